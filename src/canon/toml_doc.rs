//! TOML → [`Value`]: datetimes become their RFC 3339 text.
