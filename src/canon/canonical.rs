//! Canonicalisation of one parsed document through its schema into the leaf form `diff` compares.
