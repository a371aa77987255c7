//! Exact decimal numbers as written, so `10`, `10.0` and `1e1` are one value while
//! `9007199254740993` and `9007199254740992` stay two. Pure: no I/O.
//!
//! A value is `digits × 10^exponent` with no leading or trailing zeros in `digits`,
//! which makes structural equality the same as numeric equality.

use std::cmp::Ordering;
use std::fmt;

/// The largest magnitude a valid document may hold (f64::MAX, as the contract says).
const MAX_SIGNIFICAND: &[u8] = b"17976931348623157";
const MAX_SCIENTIFIC_EXPONENT: i64 = 308;
/// Canonical JSON writes numbers without an exponent, so a tiny exponent would make
/// a huge string. Below this the number is refused instead (f64's smallest
/// subnormal, written exactly, needs 1,074 fractional digits).
const MIN_EXPONENT: i64 = -1100;
/// Significant digits kept exactly; more is refused rather than rounded.
const MAX_DIGITS: usize = 1200;
/// Written exponents are clamped here while parsing; anything near it is out of
/// range or too precise anyway, and the clamp keeps the arithmetic from overflowing.
const EXPONENT_CLAMP: i64 = 1_000_000_000_000;

#[derive(Clone, PartialEq, Eq, Hash)]
pub struct Decimal {
    negative: bool,
    /// ASCII digits, no leading or trailing `0`; empty for zero.
    digits: Vec<u8>,
    exponent: i64,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NumberError {
    #[error("`{0}` is not a number")]
    Syntax(String),
    #[error("number `{0}` is larger in magnitude than 1.7976931348623157e308")]
    OutOfRange(String),
    #[error("number `{0}` has too many digits to be compared exactly")]
    TooPrecise(String),
}

impl Decimal {
    pub const ZERO: Decimal = Decimal {
        negative: false,
        digits: Vec::new(),
        exponent: 0,
    };

    /// Parses `[+-]? (digits [. digits?] | . digits) ([eE] [+-]? digits)?`. Callers
    /// check their own format's grammar first (JSON forbids `+1`, `.5`, `01`).
    pub fn parse(text: &str) -> Result<Decimal, NumberError> {
        let syntax = || NumberError::Syntax(text.to_owned());
        let bytes = text.as_bytes();
        let mut i = 0;
        let mut negative = false;
        if let Some(&c) = bytes.first()
            && (c == b'-' || c == b'+')
        {
            negative = c == b'-';
            i = 1;
        }
        let mut digits: Vec<u8> = Vec::with_capacity(bytes.len());
        let mut fraction_digits: i64 = 0;
        let mut seen_digit = false;
        while i < bytes.len() && bytes[i].is_ascii_digit() {
            digits.push(bytes[i]);
            seen_digit = true;
            i += 1;
        }
        if i < bytes.len() && bytes[i] == b'.' {
            i += 1;
            while i < bytes.len() && bytes[i].is_ascii_digit() {
                digits.push(bytes[i]);
                fraction_digits += 1;
                seen_digit = true;
                i += 1;
            }
        }
        if !seen_digit {
            return Err(syntax());
        }
        let mut exponent: i64 = 0;
        if i < bytes.len() && (bytes[i] == b'e' || bytes[i] == b'E') {
            i += 1;
            let mut exp_negative = false;
            if i < bytes.len() && (bytes[i] == b'-' || bytes[i] == b'+') {
                exp_negative = bytes[i] == b'-';
                i += 1;
            }
            let start = i;
            while i < bytes.len() && bytes[i].is_ascii_digit() {
                // Saturate: anything this large is out of range or zero anyway.
                exponent = (exponent * 10 + i64::from(bytes[i] - b'0')).min(EXPONENT_CLAMP);
                i += 1;
            }
            if i == start {
                return Err(syntax());
            }
            if exp_negative {
                exponent = -exponent;
            }
        }
        if i != bytes.len() {
            return Err(syntax());
        }
        let exponent = exponent.saturating_sub(fraction_digits);
        let d = Decimal::normalise(negative, digits, exponent);
        d.check_range(text)?;
        Ok(d)
    }

    fn normalise(negative: bool, mut digits: Vec<u8>, mut exponent: i64) -> Decimal {
        let lead = digits.iter().take_while(|&&b| b == b'0').count();
        digits.drain(..lead);
        let trail = digits.iter().rev().take_while(|&&b| b == b'0').count();
        digits.truncate(digits.len() - trail);
        exponent = exponent.saturating_add(trail as i64);
        if digits.is_empty() {
            return Decimal::ZERO;
        }
        Decimal {
            negative,
            digits,
            exponent,
        }
    }

    fn check_range(&self, text: &str) -> Result<(), NumberError> {
        if self.is_zero() {
            return Ok(());
        }
        let sci = self.scientific_exponent();
        if sci > MAX_SCIENTIFIC_EXPONENT
            || (sci == MAX_SCIENTIFIC_EXPONENT && &self.digits[..] > MAX_SIGNIFICAND)
        {
            return Err(NumberError::OutOfRange(text.to_owned()));
        }
        if self.exponent < MIN_EXPONENT || self.digits.len() > MAX_DIGITS {
            return Err(NumberError::TooPrecise(text.to_owned()));
        }
        Ok(())
    }

    pub fn from_i64(v: i64) -> Decimal {
        Self::from_integer_text(&v.to_string())
    }

    pub fn from_u64(v: u64) -> Decimal {
        Self::from_integer_text(&v.to_string())
    }

    fn from_integer_text(text: &str) -> Decimal {
        let (negative, body) = match text.strip_prefix('-') {
            Some(rest) => (true, rest),
            None => (false, text),
        };
        Decimal::normalise(negative, body.as_bytes().to_vec(), 0)
    }

    /// The shortest decimal that round-trips to `v` (how TOML's binary64 floats are
    /// written back); `None` for NaN and infinities.
    pub fn from_f64(v: f64) -> Option<Decimal> {
        if !v.is_finite() {
            return None;
        }
        // `{:e}` prints the shortest round-trip representation.
        Decimal::parse(&format!("{v:e}")).ok()
    }

    pub fn is_zero(&self) -> bool {
        self.digits.is_empty()
    }

    pub fn is_negative(&self) -> bool {
        self.negative
    }

    pub fn is_integer(&self) -> bool {
        self.exponent >= 0
    }

    /// The exponent when written as `d.ddd × 10^e`.
    fn scientific_exponent(&self) -> i64 {
        self.exponent + self.digits.len() as i64 - 1
    }

    pub fn abs(&self) -> Decimal {
        Decimal {
            negative: false,
            ..self.clone()
        }
    }

    pub fn neg(&self) -> Decimal {
        if self.is_zero() {
            return Decimal::ZERO;
        }
        Decimal {
            negative: !self.negative,
            ..self.clone()
        }
    }

    /// `self − other`, exactly.
    pub fn sub(&self, other: &Decimal) -> Decimal {
        self.add(&other.neg())
    }

    /// `self + other`, exactly.
    pub fn add(&self, other: &Decimal) -> Decimal {
        if self.is_zero() {
            return other.clone();
        }
        if other.is_zero() {
            return self.clone();
        }
        let exponent = self.exponent.min(other.exponent);
        let a = self.aligned(exponent);
        let b = other.aligned(exponent);
        if self.negative == other.negative {
            return Decimal::normalise(self.negative, add_magnitudes(&a, &b), exponent);
        }
        match cmp_magnitudes(&a, &b) {
            Ordering::Equal => Decimal::ZERO,
            Ordering::Greater => {
                Decimal::normalise(self.negative, sub_magnitudes(&a, &b), exponent)
            }
            Ordering::Less => Decimal::normalise(other.negative, sub_magnitudes(&b, &a), exponent),
        }
    }

    /// The digits scaled to `exponent` (≤ self.exponent), most significant first.
    fn aligned(&self, exponent: i64) -> Vec<u8> {
        let zeros = (self.exponent - exponent) as usize;
        let mut v = Vec::with_capacity(self.digits.len() + zeros);
        v.extend_from_slice(&self.digits);
        v.resize(self.digits.len() + zeros, b'0');
        v
    }

    /// Canonical JSON text: no exponent, integral values without a fraction, no
    /// trailing fractional zeros, `-0` → `0`.
    pub fn to_canonical(&self) -> String {
        let mut out = String::new();
        self.write_canonical(&mut out);
        out
    }

    pub fn write_canonical(&self, out: &mut String) {
        if self.is_zero() {
            out.push('0');
            return;
        }
        if self.negative {
            out.push('-');
        }
        let digits = std::str::from_utf8(&self.digits).unwrap_or_default();
        if self.exponent >= 0 {
            out.push_str(digits);
            out.extend(std::iter::repeat_n('0', self.exponent as usize));
            return;
        }
        let point = self.digits.len() as i64 + self.exponent;
        if point > 0 {
            let (int, frac) = digits.split_at(point as usize);
            out.push_str(int);
            out.push('.');
            out.push_str(frac);
        } else {
            out.push_str("0.");
            out.extend(std::iter::repeat_n('0', (-point) as usize));
            out.push_str(digits);
        }
    }

    /// Nearest f64 (for schema validation, which works on binary floats).
    pub fn to_f64(&self) -> f64 {
        self.to_canonical().parse().unwrap_or(f64::NAN)
    }

    /// Exact i64 when the value is an integer in range.
    pub fn to_i64(&self) -> Option<i64> {
        if !self.is_integer() {
            return None;
        }
        self.to_canonical().parse().ok()
    }

    /// Exact u64 when the value is a non-negative integer in range.
    pub fn to_u64(&self) -> Option<u64> {
        if !self.is_integer() {
            return None;
        }
        self.to_canonical().parse().ok()
    }
}

fn cmp_magnitudes(a: &[u8], b: &[u8]) -> Ordering {
    a.len().cmp(&b.len()).then_with(|| a.cmp(b))
}

fn add_magnitudes(a: &[u8], b: &[u8]) -> Vec<u8> {
    let n = a.len().max(b.len());
    let mut out = vec![b'0'; n + 1];
    let mut carry = 0u8;
    for i in 0..n {
        let da = if i < a.len() {
            a[a.len() - 1 - i] - b'0'
        } else {
            0
        };
        let db = if i < b.len() {
            b[b.len() - 1 - i] - b'0'
        } else {
            0
        };
        let s = da + db + carry;
        out[n - i] = b'0' + s % 10;
        carry = s / 10;
    }
    out[0] = b'0' + carry;
    out
}

/// `a − b` for magnitudes with `a ≥ b`.
fn sub_magnitudes(a: &[u8], b: &[u8]) -> Vec<u8> {
    let mut out = vec![b'0'; a.len()];
    let mut borrow = 0i8;
    for i in 0..a.len() {
        let da = (a[a.len() - 1 - i] - b'0') as i8;
        let db = if i < b.len() {
            (b[b.len() - 1 - i] - b'0') as i8
        } else {
            0
        };
        let mut d = da - db - borrow;
        borrow = 0;
        if d < 0 {
            d += 10;
            borrow = 1;
        }
        out[a.len() - 1 - i] = b'0' + d as u8;
    }
    out
}

impl Ord for Decimal {
    fn cmp(&self, other: &Self) -> Ordering {
        let sign = |d: &Decimal| {
            if d.is_zero() {
                0
            } else if d.negative {
                -1
            } else {
                1
            }
        };
        match sign(self).cmp(&sign(other)) {
            Ordering::Equal => {}
            o => return o,
        }
        if self.is_zero() {
            return Ordering::Equal;
        }
        let magnitude = self
            .scientific_exponent()
            .cmp(&other.scientific_exponent())
            .then_with(|| self.digits.cmp(&other.digits));
        if self.negative {
            magnitude.reverse()
        } else {
            magnitude
        }
    }
}

impl PartialOrd for Decimal {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl fmt::Display for Decimal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_canonical())
    }
}

impl fmt::Debug for Decimal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Decimal({self})")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(s: &str) -> Decimal {
        Decimal::parse(s).unwrap()
    }

    #[test]
    fn equal_values_written_differently_are_equal() {
        assert_eq!(d("10"), d("10.0"));
        assert_eq!(d("10"), d("1e1"));
        assert_eq!(d("10"), d("100e-1"));
        assert_eq!(d("0"), d("-0"));
        assert_eq!(d("0"), d("0.000e5"));
        assert_eq!(d("0.1"), Decimal::from_f64(0.1).unwrap());
    }

    #[test]
    fn integers_beyond_two_to_the_53_stay_distinct() {
        assert_ne!(d("9007199254740993"), d("9007199254740992"));
        assert_eq!(d("9007199254740993").to_canonical(), "9007199254740993");
    }

    #[test]
    fn canonical_text_has_no_exponent_and_no_trailing_zeros() {
        assert_eq!(d("1e1").to_canonical(), "10");
        assert_eq!(d("10.0").to_canonical(), "10");
        assert_eq!(d("-0").to_canonical(), "0");
        assert_eq!(d("1.2500").to_canonical(), "1.25");
        assert_eq!(d("-1.5e-3").to_canonical(), "-0.0015");
        assert_eq!(d("123.456e1").to_canonical(), "1234.56");
    }

    #[test]
    fn range_is_f64_max() {
        assert!(Decimal::parse("1.7976931348623157e308").is_ok());
        assert!(matches!(
            Decimal::parse("1.7976931348623158e308"),
            Err(NumberError::OutOfRange(_))
        ));
        assert!(matches!(
            Decimal::parse("1e309"),
            Err(NumberError::OutOfRange(_))
        ));
        assert!(matches!(
            Decimal::parse("1e99999999999999999999999"),
            Err(NumberError::OutOfRange(_))
        ));
        assert!(Decimal::parse("5e-324").is_ok());
        assert!(matches!(
            Decimal::parse("1e-5000"),
            Err(NumberError::TooPrecise(_))
        ));
    }

    #[test]
    fn syntax_errors() {
        for bad in ["", "-", ".", "1e", "1e+", "abc", "1.2.3", "0x10", "1_000"] {
            assert!(Decimal::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn arithmetic_is_exact() {
        assert_eq!(d("10").sub(&d("12")), d("-2"));
        assert_eq!(d("0.3").sub(&d("0.1")), d("0.2"));
        assert_eq!(
            d("1e20").add(&d("1e-20")).to_canonical(),
            "100000000000000000000.00000000000000000001"
        );
        assert_eq!(d("-5").add(&d("5")), Decimal::ZERO);
        assert_eq!(d("9007199254740993").sub(&d("9007199254740992")), d("1"));
    }

    #[test]
    fn ordering_is_numeric() {
        let mut v = [
            d("10"),
            d("-1"),
            d("2"),
            d("0"),
            d("-10.5"),
            d("0.001"),
            d("1e2"),
        ];
        v.sort();
        let s: Vec<String> = v.iter().map(|x| x.to_canonical()).collect();
        assert_eq!(s, ["-10.5", "-1", "0", "0.001", "2", "10", "100"]);
    }

    proptest::proptest! {
        #[test]
        fn sub_matches_i128(a in -1_000_000_000_000i64..1_000_000_000_000, b in -1_000_000_000_000i64..1_000_000_000_000) {
            let got = Decimal::from_i64(a).sub(&Decimal::from_i64(b));
            proptest::prop_assert_eq!(got.to_canonical(), (i128::from(a) - i128::from(b)).to_string());
        }

        #[test]
        fn cmp_matches_f64_for_small_values(a in -1e6f64..1e6, b in -1e6f64..1e6) {
            let (x, y) = (Decimal::from_f64(a).unwrap(), Decimal::from_f64(b).unwrap());
            proptest::prop_assert_eq!(x.cmp(&y), a.partial_cmp(&b).unwrap());
        }
    }
}
