//! YAML 1.2 (core schema) → [`Value`], from parser events so scalars keep their
//! exact text.
