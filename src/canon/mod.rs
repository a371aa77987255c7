//! The pure core's first half: parse a document (JSON, YAML 1.2, TOML) into a
//! [`Value`] under the contract's validity rules (§4), then canonicalise it through
//! the bot's JSON Schema (§6.2): defaults filled, keyed arrays, sets, ignored and
//! secret properties. No I/O, no clock.
//!
//! It also owns the words `diff` compares in: leaf paths and `ignore_fields`
//! patterns (`path.rs`) and flattening a canonical tree to leaves (`flatten.rs`),
//! so `diff` only imports from here. Parsing: `parse.rs` dispatches to `json.rs`,
//! `yaml.rs` and `toml_doc.rs`, which all report in `parse_error.rs`'s terms.

pub mod canonical;
pub mod flatten;
mod json;
pub mod number;
pub mod parse;
pub mod parse_error;
pub mod path;
pub mod schema;
pub mod secret;
pub mod toml_doc;
pub mod tree;
pub mod value;
pub mod yaml;

pub use number::Decimal;
pub use parse::parse_document;
pub use parse_error::{ParseError, ParseLimits};
pub use value::{Map, Value};

/// A document's format, chosen by file extension.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Format {
    Json,
    Yaml,
    Toml,
}

impl Format {
    /// `.json`, `.yaml`/`.yml`, `.toml` (case-insensitive); anything else is `None`.
    pub fn from_path(path: &str) -> Option<Format> {
        let ext = path.rsplit_once('.')?.1.to_ascii_lowercase();
        match ext.as_str() {
            "json" => Some(Format::Json),
            "yaml" | "yml" => Some(Format::Yaml),
            "toml" => Some(Format::Toml),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Format::Json => "json",
            Format::Yaml => "yaml",
            Format::Toml => "toml",
        }
    }
}
