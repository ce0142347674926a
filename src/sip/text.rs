//! Lexical helpers shared by the SIP parsers: token classes, quoted strings,
//! list splitting that respects quotes and angle brackets, and parameters.
//!
//! Everything here works on `&str` slices of an already framed message and
//! never panics: malformed input yields `None` or an error.

use std::fmt;

/// RFC 3261 `token` characters, as a table.
const TOKEN_BYTES: [bool; 256] = {
    let mut table = [false; 256];
    let mut i = 0;
    while i < 256 {
        let b = i as u8;
        table[i] = b.is_ascii_alphanumeric()
            || matches!(b, b'-' | b'.' | b'!' | b'%' | b'*' | b'_' | b'+' | b'`' | b'\'' | b'~');
        i += 1;
    }
    table
};

/// RFC 3261 `token` characters.
#[inline]
pub(crate) fn is_token_byte(b: u8) -> bool {
    TOKEN_BYTES[b as usize]
}

/// True when `s` is a non-empty RFC 3261 token.
pub(crate) fn is_token(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(is_token_byte)
}

/// Linear white space as it appears after unfolding: space and tab.
pub(crate) fn is_lws(b: u8) -> bool {
    b == b' ' || b == b'\t'
}

pub(crate) fn trim_lws(s: &str) -> &str {
    let b = s.as_bytes();
    let (mut start, mut end) = (0, b.len());
    while start < end && is_lws(b[start]) {
        start += 1;
    }
    while end > start && is_lws(b[end - 1]) {
        end -= 1;
    }
    &s[start..end]
}

/// Index of the first `b` in `s`: a plain scan, quicker than `str::find`
/// on the short strings header values are made of.
pub(crate) fn find_byte(s: &str, b: u8) -> Option<usize> {
    s.bytes().position(|c| c == b)
}

/// Index of the last `b` in `s`.
pub(crate) fn rfind_byte(s: &str, b: u8) -> Option<usize> {
    s.bytes().rposition(|c| c == b)
}

/// Splits `s` on `sep` where `sep` is outside double quotes and `<...>`.
/// Empty items are yielded as empty strings so callers can reject them.
pub(crate) fn split_top_level(s: &str, sep: u8) -> SplitTopLevel<'_> {
    SplitTopLevel { rest: Some(s), sep }
}

pub(crate) struct SplitTopLevel<'a> {
    rest: Option<&'a str>,
    sep: u8,
}

impl<'a> Iterator for SplitTopLevel<'a> {
    type Item = &'a str;

    fn next(&mut self) -> Option<&'a str> {
        let s = self.rest?;
        match find_top_level(s, self.sep) {
            Some(i) => {
                self.rest = Some(&s[i + 1..]);
                Some(&s[..i])
            }
            None => {
                self.rest = None;
                Some(s)
            }
        }
    }
}

/// Index of the first `sep` outside quotes and angle brackets.
pub(crate) fn find_top_level(s: &str, sep: u8) -> Option<usize> {
    let bytes = s.as_bytes();
    let mut in_quotes = false;
    let mut in_angle = false;
    let mut i = 0;
    while i < bytes.len() {
        let b = bytes[i];
        if in_quotes {
            match b {
                b'\\' => i += 1,
                b'"' => in_quotes = false,
                _ => {}
            }
        } else if b == b'"' {
            in_quotes = true;
        } else if b == b'<' {
            in_angle = true;
        } else if b == b'>' {
            in_angle = false;
        } else if b == sep && !in_angle {
            return Some(i);
        }
        i += 1;
    }
    None
}

/// Length of the quoted string at the start of `s`, both quotes included;
/// `None` when `s` does not start with `"` or the string is not closed.
fn quoted_len(s: &str) -> Option<usize> {
    let b = s.as_bytes();
    if b.first() != Some(&b'"') {
        return None;
    }
    let mut i = 1;
    while i < b.len() {
        match b[i] {
            // A quoted-pair: the next character is taken as is (a multi-byte
            // one has no '"' or '\\' among its continuation bytes).
            b'\\' => i += 2,
            b'"' => return Some(i + 1),
            _ => i += 1,
        }
    }
    None
}

/// Reads a quoted string at the start of `s` (which must begin with `"`).
/// Returns the unescaped content and the rest after the closing quote.
pub(crate) fn read_quoted(s: &str) -> Option<(String, &str)> {
    let n = quoted_len(s)?;
    let inner = &s[1..n - 1];
    let out = if inner.contains('\\') {
        let mut out = String::with_capacity(inner.len());
        let mut chars = inner.chars();
        while let Some(c) = chars.next() {
            out.push(if c == '\\' { chars.next()? } else { c });
        }
        out
    } else {
        inner.to_string()
    };
    Some((out, &s[n..]))
}

/// Quotes `s` as an RFC 3261 quoted-string, escaping `"` and `\`.
pub(crate) fn quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        if c == '"' || c == '\\' {
            out.push('\\');
        }
        out.push(c);
    }
    out.push('"');
    out
}

/// One `;name[=value]` parameter. The value is kept as written (a quoted
/// value keeps its quotes) so that re-serialization is verbatim.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Param {
    /// Parameter name as written.
    pub name: String,
    /// Raw value as written, quotes included; `None` for a flag parameter.
    pub value: Option<String>,
}

/// An ordered list of parameters with case-insensitive lookup.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Params(pub Vec<Param>);

impl Params {
    /// An empty list.
    pub fn new() -> Self {
        Self(Vec::new())
    }

    /// The raw value of the first parameter named `name`; `Some(None)` for a
    /// flag parameter, `None` when absent.
    pub fn get(&self, name: &str) -> Option<Option<&str>> {
        self.0.iter().find(|p| p.name.eq_ignore_ascii_case(name)).map(|p| p.value.as_deref())
    }

    /// The value of `name` with surrounding quotes removed and quoted-pairs
    /// unescaped; `None` when absent or a flag.
    pub fn value(&self, name: &str) -> Option<String> {
        let raw = self.get(name)??;
        if raw.starts_with('"') { read_quoted(raw).map(|(v, _)| v) } else { Some(raw.to_string()) }
    }

    /// True when a parameter named `name` is present.
    pub fn contains(&self, name: &str) -> bool {
        self.get(name).is_some()
    }

    /// Sets `name` to `value`, replacing an existing parameter of that name.
    pub fn set(&mut self, name: &str, value: Option<String>) {
        match self.0.iter_mut().find(|p| p.name.eq_ignore_ascii_case(name)) {
            Some(p) => p.value = value,
            None => self.0.push(Param { name: name.to_string(), value }),
        }
    }

    /// Removes every parameter named `name`.
    pub fn remove(&mut self, name: &str) {
        self.0.retain(|p| !p.name.eq_ignore_ascii_case(name));
    }

    /// True when there are no parameters.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Parses `;a=b;c` (the leading `;` optional). Names must be tokens;
    /// values are tokens, quoted strings or bracketed IPv6 references.
    pub fn parse(s: &str) -> Option<Params> {
        let s = trim_lws(s);
        let s = s.strip_prefix(';').unwrap_or(s);
        let mut params = Vec::new();
        if trim_lws(s).is_empty() {
            return Some(Params(params));
        }
        for item in split_top_level(s, b';') {
            params.push(parse_param(item)?);
        }
        Some(Params(params))
    }
}

fn parse_param(item: &str) -> Option<Param> {
    let item = trim_lws(item);
    let (name, value) = match find_byte(item, b'=') {
        Some(eq) => (trim_lws(&item[..eq]), Some(trim_lws(&item[eq + 1..]))),
        None => (item, None),
    };
    if !is_token(name) {
        return None;
    }
    let value = match value {
        None => None,
        Some(v) if v.starts_with('"') => {
            if !trim_lws(&v[quoted_len(v)?..]).is_empty() {
                return None;
            }
            Some(v.to_string())
        }
        Some(v) if v.starts_with('[') && v.ends_with(']') => Some(v.to_string()),
        Some(v) if is_param_value(v) => Some(v.to_string()),
        Some(_) => return None,
    };
    Some(Param { name: name.to_string(), value })
}

/// Token characters plus those URI parameters allow (`:`, `/`, `[`, `]`, `&`, `$`).
fn is_param_value(v: &str) -> bool {
    !v.is_empty()
        && v.bytes()
            .all(|b| is_token_byte(b) || matches!(b, b':' | b'/' | b'[' | b']' | b'&' | b'$' | b'@' | b'?' | b'='))
}

impl fmt::Display for Params {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for p in &self.0 {
            f.write_str(";")?;
            f.write_str(&p.name)?;
            if let Some(v) = &p.value {
                f.write_str("=")?;
                f.write_str(v)?;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_outside_quotes_and_brackets() {
        let items: Vec<_> = split_top_level(r#""a,b" <sip:x;y,z>, <sip:w>"#, b',').collect();
        assert_eq!(items, vec![r#""a,b" <sip:x;y,z>"#, " <sip:w>"]);
    }

    #[test]
    fn quoted_strings_round_trip() {
        let q = quote(r#"say "hi" \ bye"#);
        let (back, rest) = read_quoted(&q).expect("valid quoted string");
        assert_eq!(back, r#"say "hi" \ bye"#);
        assert_eq!(rest, "");
        assert!(read_quoted("\"unterminated").is_none());
    }

    #[test]
    fn params_keep_raw_values() {
        let p = Params::parse(r#";tag=abc ; +sip.instance="<urn:uuid:1>";lr"#).expect("valid params");
        assert_eq!(p.get("TAG"), Some(Some("abc")));
        assert_eq!(p.value("+sip.instance").as_deref(), Some("<urn:uuid:1>"));
        assert_eq!(p.get("lr"), Some(None));
        assert_eq!(p.to_string(), r#";tag=abc;+sip.instance="<urn:uuid:1>";lr"#);
        assert!(Params::parse(";;").is_none());
        assert!(Params::parse(";a b=c").is_none());
    }
}
