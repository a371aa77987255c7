//! A bot's slug (§3): the one name a bot has in the config, the repo path
//! template, metrics and reports. Owns what a slug may contain; nothing else.

use std::fmt;

/// Letters, digits, `.`, `_`, `-`; starts with a letter or digit; never `..`.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct BotSlug(String);

/// A text that is not a slug; holds the text as written.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error(
    "`{0}` is not a valid slug (letters, digits, `.`, `_` and `-`, starting with a letter or digit, never `..`)"
)]
pub struct InvalidSlug(pub String);

impl BotSlug {
    pub fn parse(s: &str) -> Result<BotSlug, InvalidSlug> {
        let ok_first = s.chars().next().is_some_and(|c| c.is_ascii_alphanumeric());
        let ok_chars = s
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'));
        if !ok_first || !ok_chars || s.contains("..") {
            return Err(InvalidSlug(s.to_owned()));
        }
        Ok(BotSlug(s.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for BotSlug {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slugs() {
        assert!(BotSlug::parse("risk.killswitch").is_ok());
        assert!(BotSlug::parse("mm-eu_2").is_ok());
        for bad in ["", ".a", "-a", "a..b", "a/b", "a b", "ä"] {
            assert!(BotSlug::parse(bad).is_err(), "{bad}");
        }
    }
}
