//! The bot's JSON Schema, used twice: full validation (the `jsonschema` crate), and
//! canonicalisation, which follows only `properties`, object `additionalProperties`
//! and `items`, local `$ref` and `allOf` (§6.2).
