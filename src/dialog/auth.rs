//! Client-side SIP digest authentication (RFC 3261 §22, RFC 2617, RFC 7616,
//! RFC 8760).
//!
//! This module owns three things:
//!
//! * parsing a `WWW-Authenticate` / `Proxy-Authenticate` header value into a
//!   [`Challenge`] ([`Challenge::parse`]), and choosing the strongest of
//!   several challenges ([`preferred`]);
//! * computing the digest response for a request and building the value of
//!   the `Authorization` / `Proxy-Authorization` header ([`DigestClient`],
//!   [`Authorization`]);
//! * the per-nonce nonce-count (`nc`) state that the computation needs.
//!
//! It is sans-IO: it reads no clock, draws no randomness (the caller passes
//! the `cnonce`), sends nothing and logs nothing. It never logs or formats
//! secrets: the password lives in a [`Password`], and the `Debug` output of
//! [`DigestClient`] and [`Authorization`] redacts the password and every
//! value derived from it (the response hash).
//!
//! Supported algorithms are `MD5`, `SHA-256` and `SHA-512-256` and their
//! `-sess` variants; supported qop values are `auth` and `auth-int`, with the
//! RFC 2069 form (no qop) as a fallback for servers that offer none.

use std::borrow::Cow;
use std::fmt;
use std::str::FromStr;

use md5::Digest as _;

use crate::secret::Password;

/// The most nonces whose counts a [`DigestClient`] remembers at once.
///
/// More than one is needed because a single request may have to answer a
/// proxy and a registrar, each with its own nonce; the oldest is forgotten
/// first.
const MAX_TRACKED_NONCES: usize = 8;

/// The longest input-derived text copied into a [`ChallengeError`].
const MAX_ERROR_TEXT: usize = 64;

/// A digest algorithm (RFC 7616 §3.3, RFC 8760).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Algorithm {
    /// `MD5`, the default when a challenge names no algorithm.
    #[default]
    Md5,
    /// `MD5-sess`.
    Md5Sess,
    /// `SHA-256`.
    Sha256,
    /// `SHA-256-sess`.
    Sha256Sess,
    /// `SHA-512-256` (SHA-512/256 of FIPS 180-4).
    Sha512_256,
    /// `SHA-512-256-sess`.
    Sha512_256Sess,
}

impl Algorithm {
    /// The canonical token, as sent in the `algorithm` parameter.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Md5 => "MD5",
            Self::Md5Sess => "MD5-sess",
            Self::Sha256 => "SHA-256",
            Self::Sha256Sess => "SHA-256-sess",
            Self::Sha512_256 => "SHA-512-256",
            Self::Sha512_256Sess => "SHA-512-256-sess",
        }
    }

    /// Whether this is a `-sess` variant, whose HA1 also covers the nonce and
    /// the cnonce.
    #[must_use]
    pub fn is_session(self) -> bool {
        matches!(self, Self::Md5Sess | Self::Sha256Sess | Self::Sha512_256Sess)
    }

    /// Rank used by [`preferred`]: higher is stronger.
    fn strength(self) -> u8 {
        match self {
            Self::Md5 | Self::Md5Sess => 1,
            Self::Sha256 | Self::Sha256Sess => 2,
            Self::Sha512_256 | Self::Sha512_256Sess => 3,
        }
    }

    const ALL: [Self; 6] =
        [Self::Md5, Self::Md5Sess, Self::Sha256, Self::Sha256Sess, Self::Sha512_256, Self::Sha512_256Sess];
}

impl FromStr for Algorithm {
    type Err = ChallengeError;

    /// Parses an algorithm token case-insensitively (`md5-SESS` is
    /// `MD5-sess`); an unknown token is [`ChallengeError::UnsupportedAlgorithm`].
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::ALL
            .into_iter()
            .find(|a| a.as_str().eq_ignore_ascii_case(s))
            .ok_or_else(|| ChallengeError::UnsupportedAlgorithm(clip(s)))
    }
}

impl fmt::Display for Algorithm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A quality of protection (RFC 7616 §3.3).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Qop {
    /// `auth`: authentication of the method and request URI.
    Auth,
    /// `auth-int`: `auth` plus integrity of the message body.
    AuthInt,
}

impl Qop {
    /// The token, as sent in the `qop` parameter.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Auth => "auth",
            Self::AuthInt => "auth-int",
        }
    }

    fn from_token(token: &str) -> Option<Self> {
        if token.eq_ignore_ascii_case("auth") {
            Some(Self::Auth)
        } else if token.eq_ignore_ascii_case("auth-int") {
            Some(Self::AuthInt)
        } else {
            None
        }
    }
}

impl fmt::Display for Qop {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Why a challenge header value could not be used.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ChallengeError {
    /// The scheme is not `Digest` (e.g. `Basic`); holds the scheme as
    /// received, clipped to 64 characters.
    UnsupportedScheme(String),
    /// The `algorithm` parameter names an algorithm this module does not
    /// implement; holds the token as received, clipped to 64 characters.
    UnsupportedAlgorithm(String),
    /// The challenge has no `realm` parameter.
    MissingRealm,
    /// The challenge has no `nonce` parameter.
    MissingNonce,
    /// The header value does not follow the challenge syntax.
    Malformed {
        /// What was wrong.
        reason: &'static str,
        /// Byte offset into the header value where the problem was found.
        at: usize,
    },
}

impl fmt::Display for ChallengeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::UnsupportedScheme(s) => write!(f, "unsupported authentication scheme {s:?}"),
            Self::UnsupportedAlgorithm(a) => write!(f, "unsupported digest algorithm {a:?}"),
            Self::MissingRealm => f.write_str("digest challenge has no realm"),
            Self::MissingNonce => f.write_str("digest challenge has no nonce"),
            Self::Malformed { reason, at } => {
                write!(f, "malformed digest challenge at byte {at}: {reason}")
            }
        }
    }
}

impl std::error::Error for ChallengeError {}

/// Copies at most [`MAX_ERROR_TEXT`] characters of input into an error.
fn clip(s: &str) -> String {
    s.chars().take(MAX_ERROR_TEXT).collect()
}

/// A parsed digest challenge from a `WWW-Authenticate` or
/// `Proxy-Authenticate` header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Challenge {
    /// The protection space (`realm`).
    pub realm: String,
    /// The server nonce.
    pub nonce: String,
    /// The `opaque` value to echo back, if the server sent one.
    pub opaque: Option<String>,
    /// The algorithm; [`Algorithm::Md5`] when the challenge names none.
    pub algorithm: Algorithm,
    /// The qop values offered, in the server's order; unknown tokens are
    /// ignored. Empty means the RFC 2069 form.
    pub qop: Vec<Qop>,
    /// `stale=true`: the previous nonce expired but the credentials were
    /// good, so retry with the new nonce without asking the user again.
    pub stale: bool,
    /// Whether the challenge came from `Proxy-Authenticate` (answer with
    /// `Proxy-Authorization`) rather than `WWW-Authenticate`.
    pub proxy: bool,
}

impl Challenge {
    /// Parses the value (without the header name) of a `WWW-Authenticate`
    /// (`proxy == false`) or `Proxy-Authenticate` (`proxy == true`) header.
    ///
    /// Accepts the scheme `Digest` in any case followed by comma-separated
    /// `name=token` or `name="quoted string"` parameters, with linear white
    /// space around `=` and `,`, empty list elements, and case-insensitive
    /// names. Unknown parameters are ignored; when a parameter repeats, the
    /// first occurrence counts. Never panics.
    ///
    /// # Errors
    ///
    /// [`ChallengeError::UnsupportedScheme`] for another scheme,
    /// [`ChallengeError::UnsupportedAlgorithm`] for an unknown algorithm,
    /// [`ChallengeError::MissingRealm`] / [`ChallengeError::MissingNonce`]
    /// when those are absent, and [`ChallengeError::Malformed`] for a syntax
    /// error (including control characters other than tab inside a value).
    pub fn parse(header_value: &str, proxy: bool) -> Result<Challenge, ChallengeError> {
        let mut cur = Cursor::new(header_value);
        cur.skip_lws();
        let scheme = cur.take_while(is_token_char);
        if scheme.is_empty() {
            return Err(cur.malformed("expected an authentication scheme"));
        }
        if !scheme.eq_ignore_ascii_case("Digest") {
            return Err(ChallengeError::UnsupportedScheme(clip(scheme)));
        }
        match cur.peek() {
            None => {}
            Some(c) if is_lws(c) => {}
            Some(_) => return Err(cur.malformed("expected white space after the scheme")),
        }

        let mut realm = None;
        let mut nonce = None;
        let mut opaque = None;
        let mut algorithm = None;
        let mut qop = None;
        let mut stale = None;

        loop {
            // Separators: LWS and any number of commas (empty list elements).
            loop {
                cur.skip_lws();
                if !cur.eat(',') {
                    break;
                }
            }
            if cur.is_empty() {
                break;
            }

            let name = cur.take_while(is_token_char);
            if name.is_empty() {
                return Err(cur.malformed("expected a parameter name"));
            }
            cur.skip_lws();
            if !cur.eat('=') {
                return Err(cur.malformed("expected '=' after a parameter name"));
            }
            cur.skip_lws();
            let value: Cow<'_, str> = if cur.eat('"') {
                Cow::Owned(cur.quoted_string()?)
            } else {
                let v = cur.take_while(is_unquoted_value_char);
                if v.is_empty() {
                    return Err(cur.malformed("expected a parameter value"));
                }
                Cow::Borrowed(v)
            };
            cur.skip_lws();
            match cur.peek() {
                None | Some(',') => {}
                Some(_) => return Err(cur.malformed("expected ',' between parameters")),
            }

            let slot = if name.eq_ignore_ascii_case("realm") {
                &mut realm
            } else if name.eq_ignore_ascii_case("nonce") {
                &mut nonce
            } else if name.eq_ignore_ascii_case("opaque") {
                &mut opaque
            } else if name.eq_ignore_ascii_case("algorithm") {
                &mut algorithm
            } else if name.eq_ignore_ascii_case("qop") {
                &mut qop
            } else if name.eq_ignore_ascii_case("stale") {
                &mut stale
            } else {
                continue;
            };
            if slot.is_none() {
                *slot = Some(value.into_owned());
            }
        }

        let algorithm = match algorithm {
            Some(a) => a.trim_matches(is_lws).parse::<Algorithm>()?,
            None => Algorithm::Md5,
        };
        let realm = realm.ok_or(ChallengeError::MissingRealm)?;
        let nonce = nonce.ok_or(ChallengeError::MissingNonce)?;
        let mut offered = Vec::new();
        for q in qop.as_deref().unwrap_or("").split(',').filter_map(|t| Qop::from_token(t.trim_matches(is_lws))) {
            if !offered.contains(&q) {
                offered.push(q);
            }
        }
        let stale = stale.is_some_and(|s| s.trim_matches(is_lws).eq_ignore_ascii_case("true"));

        Ok(Challenge { realm, nonce, opaque, algorithm, qop: offered, stale, proxy })
    }
}

/// Picks the challenge with the strongest supported algorithm:
/// SHA-512-256 over SHA-256 over MD5 (`-sess` variants rank with their base
/// algorithm). Among equals the first wins. `None` for an empty slice.
///
/// Meant for the several challenges one server sends for one realm
/// (RFC 8760 §2.4); challenges for different realms (e.g. two proxies) each
/// need their own answer.
#[must_use]
pub fn preferred(challenges: &[Challenge]) -> Option<&Challenge> {
    let mut best: Option<&Challenge> = None;
    for c in challenges {
        if best.is_none_or(|b| c.algorithm.strength() > b.algorithm.strength()) {
            best = Some(c);
        }
    }
    best
}

/// Credentials plus nonce-count state, answering digest challenges.
///
/// The nonce count (`nc`) is kept per nonce: the first answer to a nonce
/// sends `nc=00000001`, each further answer to the same nonce one more, and
/// a new nonce starts again at 1. The counts of the last few nonces are
/// remembered, so alternating between a proxy's and a registrar's nonce
/// keeps both counts increasing.
///
/// `Debug` shows the username and the counts but never the password.
#[derive(Debug, Clone)]
pub struct DigestClient {
    username: String,
    password: Password,
    /// `(nonce, last nc sent)`, oldest first.
    nonce_counts: Vec<(String, u32)>,
}

impl DigestClient {
    /// Creates a client for one account.
    pub fn new(username: impl Into<String>, password: impl Into<Password>) -> Self {
        Self { username: username.into(), password: password.into(), nonce_counts: Vec::new() }
    }

    /// The username sent in the `username` parameter.
    #[must_use]
    pub fn username(&self) -> &str {
        &self.username
    }

    /// Answers `challenge` for one request and advances the nonce count.
    ///
    /// `method` is the SIP method (`REGISTER`, `INVITE`, ...), `digest_uri`
    /// the Request-URI as sent, `body` the message body (only hashed for
    /// `auth-int`), and `cnonce` a fresh client nonce chosen by the caller
    /// (sent when a qop is used or the algorithm is a `-sess` one).
    ///
    /// The qop is `auth` when offered, else `auth-int` when offered, else
    /// none (the RFC 2069 form: `response = H(HA1:nonce:HA2)`).
    #[must_use]
    pub fn authorize(
        &mut self,
        challenge: &Challenge,
        method: &str,
        digest_uri: &str,
        body: &[u8],
        cnonce: &str,
    ) -> Authorization {
        let nc = self.next_nc(&challenge.nonce);
        let alg = challenge.algorithm;
        let qop = if challenge.qop.contains(&Qop::Auth) {
            Some(Qop::Auth)
        } else if challenge.qop.contains(&Qop::AuthInt) {
            Some(Qop::AuthInt)
        } else {
            None
        };

        let mut ha1 =
            hash_hex(alg, &[self.username.as_bytes(), challenge.realm.as_bytes(), self.password.expose().as_bytes()]);
        if alg.is_session() {
            ha1 = hash_hex(alg, &[ha1.as_bytes(), challenge.nonce.as_bytes(), cnonce.as_bytes()]);
        }
        let ha2 = match qop {
            Some(Qop::AuthInt) => {
                let body_hash = hash_hex(alg, &[body]);
                hash_hex(alg, &[method.as_bytes(), digest_uri.as_bytes(), body_hash.as_bytes()])
            }
            Some(Qop::Auth) | None => hash_hex(alg, &[method.as_bytes(), digest_uri.as_bytes()]),
        };
        let response = match qop {
            Some(q) => {
                let nc_hex = format!("{nc:08x}");
                hash_hex(
                    alg,
                    &[
                        ha1.as_bytes(),
                        challenge.nonce.as_bytes(),
                        nc_hex.as_bytes(),
                        cnonce.as_bytes(),
                        q.as_str().as_bytes(),
                        ha2.as_bytes(),
                    ],
                )
            }
            None => hash_hex(alg, &[ha1.as_bytes(), challenge.nonce.as_bytes(), ha2.as_bytes()]),
        };

        Authorization {
            username: self.username.clone(),
            realm: challenge.realm.clone(),
            nonce: challenge.nonce.clone(),
            uri: digest_uri.to_owned(),
            response,
            algorithm: alg,
            cnonce: (qop.is_some() || alg.is_session()).then(|| cnonce.to_owned()),
            opaque: challenge.opaque.clone(),
            qop,
            nc,
            proxy: challenge.proxy,
        }
    }

    /// The nc to send with `nonce` now, recording it.
    fn next_nc(&mut self, nonce: &str) -> u32 {
        if let Some(pos) = self.nonce_counts.iter().position(|(n, _)| n == nonce) {
            let (n, count) = self.nonce_counts.remove(pos);
            // nc is 8 hex digits; after 2^32 - 1 answers start over.
            let next = count.checked_add(1).unwrap_or(1);
            self.nonce_counts.push((n, next));
            next
        } else {
            if self.nonce_counts.len() >= MAX_TRACKED_NONCES {
                self.nonce_counts.remove(0);
            }
            self.nonce_counts.push((nonce.to_owned(), 1));
            1
        }
    }
}

/// The answer to a challenge: the value of an `Authorization` or (when
/// [`Authorization::is_proxy`]) a `Proxy-Authorization` header.
///
/// `Display` gives the header value, e.g.
/// `Digest username="alice", realm="example.com", nonce="abc",
/// uri="sip:example.com", response="…", algorithm=MD5, cnonce="…",
/// qop=auth, nc=00000001` (on one line). `Debug` redacts the response.
#[derive(Clone, PartialEq, Eq)]
pub struct Authorization {
    username: String,
    realm: String,
    nonce: String,
    uri: String,
    response: String,
    algorithm: Algorithm,
    cnonce: Option<String>,
    opaque: Option<String>,
    qop: Option<Qop>,
    nc: u32,
    proxy: bool,
}

impl Authorization {
    /// Whether this answers a `Proxy-Authenticate` challenge, i.e. goes in a
    /// `Proxy-Authorization` header rather than `Authorization`.
    #[must_use]
    pub fn is_proxy(&self) -> bool {
        self.proxy
    }

    /// The header name to use: `Proxy-Authorization` or `Authorization`.
    #[must_use]
    pub fn header_name(&self) -> &'static str {
        if self.proxy { "Proxy-Authorization" } else { "Authorization" }
    }

    /// The realm answered.
    #[must_use]
    pub fn realm(&self) -> &str {
        &self.realm
    }

    /// The algorithm used.
    #[must_use]
    pub fn algorithm(&self) -> Algorithm {
        self.algorithm
    }

    /// The qop used; `None` for the RFC 2069 form.
    #[must_use]
    pub fn qop(&self) -> Option<Qop> {
        self.qop
    }

    /// The nonce count used (only sent when a qop is used).
    #[must_use]
    pub fn nc(&self) -> u32 {
        self.nc
    }
}

impl fmt::Display for Authorization {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Digest username=")?;
        write_quoted(f, &self.username)?;
        f.write_str(", realm=")?;
        write_quoted(f, &self.realm)?;
        f.write_str(", nonce=")?;
        write_quoted(f, &self.nonce)?;
        f.write_str(", uri=")?;
        write_quoted(f, &self.uri)?;
        write!(f, ", response=\"{}\", algorithm={}", self.response, self.algorithm)?;
        if let Some(cnonce) = &self.cnonce {
            f.write_str(", cnonce=")?;
            write_quoted(f, cnonce)?;
        }
        if let Some(opaque) = &self.opaque {
            f.write_str(", opaque=")?;
            write_quoted(f, opaque)?;
        }
        if let Some(qop) = self.qop {
            write!(f, ", qop={qop}, nc={:08x}", self.nc)?;
        }
        Ok(())
    }
}

impl fmt::Debug for Authorization {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Authorization")
            .field("username", &self.username)
            .field("realm", &self.realm)
            .field("nonce", &self.nonce)
            .field("uri", &self.uri)
            .field("response", &Redacted)
            .field("algorithm", &self.algorithm)
            .field("cnonce", &self.cnonce)
            .field("opaque", &self.opaque)
            .field("qop", &self.qop)
            .field("nc", &self.nc)
            .field("proxy", &self.proxy)
            .finish()
    }
}

/// Stands in for a secret in `Debug` output.
struct Redacted;

impl fmt::Debug for Redacted {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<redacted>")
    }
}

/// Writes `value` as a quoted-string: `"` and `\` are escaped, and control
/// characters other than tab (which a quoted-string cannot carry, and which
/// could split the header) are left out.
fn write_quoted(f: &mut fmt::Formatter<'_>, value: &str) -> fmt::Result {
    use fmt::Write as _;
    f.write_char('"')?;
    for c in value.chars() {
        match c {
            '"' | '\\' => {
                f.write_char('\\')?;
                f.write_char(c)?;
            }
            c if is_forbidden_control(c) => {}
            c => f.write_char(c)?,
        }
    }
    f.write_char('"')
}

/// One running hash of the algorithm's family.
enum Hasher {
    Md5(md5::Md5),
    Sha256(sha2::Sha256),
    Sha512_256(sha2::Sha512_256),
}

impl Hasher {
    fn new(alg: Algorithm) -> Self {
        match alg {
            Algorithm::Md5 | Algorithm::Md5Sess => Self::Md5(md5::Md5::new()),
            Algorithm::Sha256 | Algorithm::Sha256Sess => Self::Sha256(sha2::Sha256::new()),
            Algorithm::Sha512_256 | Algorithm::Sha512_256Sess => Self::Sha512_256(sha2::Sha512_256::new()),
        }
    }

    fn update(&mut self, data: &[u8]) {
        match self {
            Self::Md5(h) => h.update(data),
            Self::Sha256(h) => h.update(data),
            Self::Sha512_256(h) => h.update(data),
        }
    }

    fn finalize_hex(self) -> String {
        match self {
            Self::Md5(h) => to_hex(&h.finalize()),
            Self::Sha256(h) => to_hex(&h.finalize()),
            Self::Sha512_256(h) => to_hex(&h.finalize()),
        }
    }
}

/// Lower-case hex of `H(parts[0] ":" parts[1] ":" ...)`.
///
/// The parts are fed to the hash one by one, so no joined buffer holding
/// the password is ever built.
fn hash_hex(alg: Algorithm, parts: &[&[u8]]) -> String {
    let mut hasher = Hasher::new(alg);
    for (i, part) in parts.iter().enumerate() {
        if i > 0 {
            hasher.update(b":");
        }
        hasher.update(part);
    }
    hasher.finalize_hex()
}

/// Lower-case hex encoding.
fn to_hex(bytes: &[u8]) -> String {
    use fmt::Write as _;
    let mut out = String::with_capacity(bytes.len().saturating_mul(2));
    for b in bytes {
        // Writing into a String cannot fail.
        let _ = write!(out, "{b:02x}");
    }
    out
}

/// Linear white space, after unfolding (CR and LF tolerated).
fn is_lws(c: char) -> bool {
    matches!(c, ' ' | '\t' | '\r' | '\n')
}

/// RFC 3261 `token` characters.
fn is_token_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '-' | '.' | '!' | '%' | '*' | '_' | '+' | '`' | '\'' | '~')
}

/// Characters of an unquoted parameter value. Wider than `token` so that
/// unquoted base64 nonces (`/`, `=`) from lax servers still parse.
fn is_unquoted_value_char(c: char) -> bool {
    !is_lws(c) && c != ',' && c != '"' && !is_forbidden_control(c)
}

/// Control characters that may not appear in a header value (tab may).
fn is_forbidden_control(c: char) -> bool {
    c.is_ascii_control() && c != '\t'
}

/// A position in a header value; every step is on a char boundary, so
/// nothing here can panic.
struct Cursor<'a> {
    input: &'a str,
    rest: &'a str,
}

impl<'a> Cursor<'a> {
    fn new(input: &'a str) -> Self {
        Self { input, rest: input }
    }

    fn offset(&self) -> usize {
        self.input.len().saturating_sub(self.rest.len())
    }

    fn malformed(&self, reason: &'static str) -> ChallengeError {
        ChallengeError::Malformed { reason, at: self.offset() }
    }

    fn is_empty(&self) -> bool {
        self.rest.is_empty()
    }

    fn peek(&self) -> Option<char> {
        self.rest.chars().next()
    }

    fn bump(&mut self) -> Option<char> {
        let mut chars = self.rest.chars();
        let c = chars.next()?;
        self.rest = chars.as_str();
        Some(c)
    }

    fn eat(&mut self, want: char) -> bool {
        if self.peek() == Some(want) {
            self.bump();
            true
        } else {
            false
        }
    }

    fn skip_lws(&mut self) {
        self.rest = self.rest.trim_start_matches(is_lws);
    }

    fn take_while(&mut self, pred: impl Fn(char) -> bool) -> &'a str {
        let end = self.rest.find(|c| !pred(c)).unwrap_or(self.rest.len());
        let (taken, rest) = self.rest.split_at_checked(end).unwrap_or((self.rest, ""));
        self.rest = rest;
        taken
    }

    /// The rest of a quoted-string whose opening quote was just eaten;
    /// `\x` quoted-pairs are unescaped.
    fn quoted_string(&mut self) -> Result<String, ChallengeError> {
        let mut out = String::new();
        loop {
            match self.bump() {
                None => return Err(self.malformed("unterminated quoted string")),
                Some('"') => return Ok(out),
                Some('\\') => match self.bump() {
                    None => return Err(self.malformed("unterminated quoted string")),
                    Some(c) if is_forbidden_control(c) => {
                        return Err(self.malformed("control character in quoted string"));
                    }
                    Some(c) => out.push(c),
                },
                Some(c) if is_forbidden_control(c) => {
                    return Err(self.malformed("control character in quoted string"));
                }
                Some(c) => out.push(c),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const RFC7616_NONCE: &str = "7ypf/xlj9XXwfDPEoM4URrv/xwf94BcCAzFZH4GiTo0v";
    const RFC7616_CNONCE: &str = "f2/wE4q74E6zIJEtWaHKaf5wv/H5QzzpXusqGemxURZJ";
    const RFC7616_OPAQUE: &str = "FQhe/qaU925kfnzjCev0ciny7QMkPqMAFRtzCUYo5tdS";

    fn challenge(value: &str) -> Challenge {
        match Challenge::parse(value, false) {
            Ok(c) => c,
            Err(e) => panic!("{value:?} should parse: {e}"),
        }
    }

    fn rfc7616_challenge(algorithm: &str) -> Challenge {
        // The challenge of RFC 7616 §3.9.1, as the server sends it.
        challenge(&format!(
            "Digest\n realm=\"http-auth@example.org\",\n qop=\"auth, auth-int\",\n \
             algorithm={algorithm},\n nonce=\"{RFC7616_NONCE}\",\n opaque=\"{RFC7616_OPAQUE}\""
        ))
    }

    #[test]
    fn rfc2617_section_3_5_vector() {
        let c = challenge(
            "Digest realm=\"testrealm@host.com\", qop=\"auth,auth-int\", \
             nonce=\"dcd98b7102dd2f0e8b11d0f600bfb0c093\", \
             opaque=\"5ccc069c403ebaf9f0171e9517f40e41\"",
        );
        let mut client = DigestClient::new("Mufasa", "Circle Of Life");
        let a = client.authorize(&c, "GET", "/dir/index.html", b"", "0a4f113b");
        assert_eq!(a.response, "6629fae49393a05397450978507c4ef1");
        assert_eq!(
            a.to_string(),
            "Digest username=\"Mufasa\", realm=\"testrealm@host.com\", \
             nonce=\"dcd98b7102dd2f0e8b11d0f600bfb0c093\", uri=\"/dir/index.html\", \
             response=\"6629fae49393a05397450978507c4ef1\", algorithm=MD5, cnonce=\"0a4f113b\", \
             opaque=\"5ccc069c403ebaf9f0171e9517f40e41\", qop=auth, nc=00000001"
        );
    }

    #[test]
    fn rfc7616_section_3_9_1_md5_vector() {
        let c = rfc7616_challenge("MD5");
        assert_eq!(c.algorithm, Algorithm::Md5);
        let mut client = DigestClient::new("Mufasa", "Circle of Life");
        let a = client.authorize(&c, "GET", "/dir/index.html", b"", RFC7616_CNONCE);
        assert_eq!(a.response, "8ca523f5e9506fed4657c9700eebdbec");
        assert_eq!(
            a.to_string(),
            format!(
                "Digest username=\"Mufasa\", realm=\"http-auth@example.org\", \
                 nonce=\"{RFC7616_NONCE}\", uri=\"/dir/index.html\", \
                 response=\"8ca523f5e9506fed4657c9700eebdbec\", algorithm=MD5, \
                 cnonce=\"{RFC7616_CNONCE}\", opaque=\"{RFC7616_OPAQUE}\", qop=auth, nc=00000001"
            )
        );
    }

    #[test]
    fn rfc7616_section_3_9_1_sha256_vector() {
        let c = rfc7616_challenge("SHA-256");
        assert_eq!(c.algorithm, Algorithm::Sha256);
        let mut client = DigestClient::new("Mufasa", "Circle of Life");
        let a = client.authorize(&c, "GET", "/dir/index.html", b"", RFC7616_CNONCE);
        assert_eq!(a.response, "753927fa0e85d155564e2e272a28d1802ca10daf4496794697cf8db5856cb6c1");
        assert!(a.to_string().contains(", algorithm=SHA-256, "));
    }

    #[test]
    fn rfc2069_form_without_qop() {
        // RFC 2069's example inputs; its printed response is known to be
        // wrong, this is the value recomputed independently.
        let c = challenge(
            "Digest realm=\"testrealm@host.com\", nonce=\"dcd98b7102dd2f0e8b11d0f600bfb0c093\", \
             opaque=\"5ccc069c403ebaf9f0171e9517f40e41\"",
        );
        let mut client = DigestClient::new("Mufasa", "CircleOfLife");
        let a = client.authorize(&c, "GET", "/dir/index.html", b"", "ignored");
        assert_eq!(a.response, "1949323746fe6a43ef61f9606e7febea");
        assert_eq!(a.qop(), None);
        let s = a.to_string();
        assert_eq!(
            s,
            "Digest username=\"Mufasa\", realm=\"testrealm@host.com\", \
             nonce=\"dcd98b7102dd2f0e8b11d0f600bfb0c093\", uri=\"/dir/index.html\", \
             response=\"1949323746fe6a43ef61f9606e7febea\", algorithm=MD5, \
             opaque=\"5ccc069c403ebaf9f0171e9517f40e41\""
        );
        assert!(!s.contains("cnonce") && !s.contains("nc=") && !s.contains("qop"));
    }

    // The following expected values were computed independently with
    // Python's hashlib (OpenSSL) from the RFC 7616 formulas.

    #[test]
    fn session_algorithms() {
        let cases = [
            ("MD5-sess", 1, "f42c1b5d59d65b1a1110effa83108238"),
            ("SHA-256-sess", 2, "504b62ab098f72ea3cb11287e3199425b7f7b55cba2cea1f978d635cee4e155f"),
            ("SHA-512-256-sess", 1, "c0a93abd96f5a4451ce13937f6e00c47241ca89cedc8f99fcd1468a97a1e53cc"),
        ];
        for (alg, nc, expected) in cases {
            let c = challenge(&format!("Digest realm=\"example.com\", nonce=\"abc\", qop=\"auth\", algorithm={alg}"));
            assert!(c.algorithm.is_session());
            let mut client = DigestClient::new("alice", "s3cret");
            let mut a = client.authorize(&c, "REGISTER", "sip:example.com", b"", "xyz");
            for _ in 1..nc {
                a = client.authorize(&c, "REGISTER", "sip:example.com", b"", "xyz");
            }
            assert_eq!(a.nc(), nc);
            assert_eq!(a.response, expected, "{alg}");
            assert!(a.to_string().contains(&format!(", algorithm={alg}, cnonce=\"xyz\"")));
        }
    }

    #[test]
    fn auth_int_hashes_the_body() {
        let c = challenge("Digest realm=\"example.com\", nonce=\"abc\", qop=\"auth-int\"");
        let mut client = DigestClient::new("alice", "s3cret");
        let a = client.authorize(&c, "INVITE", "sip:bob@example.com", b"v=0\r\n", "xyz");
        assert_eq!(a.qop(), Some(Qop::AuthInt));
        assert_eq!(a.response, "21f571be92ff5f8d3307206cab267f25");
        assert!(a.to_string().ends_with(", qop=auth-int, nc=00000001"));

        let c = challenge("Digest realm=\"example.com\", nonce=\"abc\", qop=auth-int, algorithm=SHA-256");
        let mut client = DigestClient::new("alice", "s3cret");
        let a = client.authorize(&c, "INVITE", "sip:bob@example.com", b"", "xyz");
        assert_eq!(a.response, "d122812147635b8d33c2b3fc230fd6abf3bfb1c10e6662feb255a3d6e213c3d2");
    }

    #[test]
    fn auth_preferred_over_auth_int() {
        for qop in ["auth-int,auth", "auth,auth-int", "AUTH-INT , Auth"] {
            let c = challenge(&format!("Digest realm=\"r\", nonce=\"n\", qop=\"{qop}\""));
            let mut client = DigestClient::new("u", "p");
            assert_eq!(client.authorize(&c, "REGISTER", "sip:r", b"", "c").qop(), Some(Qop::Auth));
        }
    }

    #[test]
    fn sha512_256_is_fips_sha512_256() {
        // FIPS 180-4 example: SHA-512/256("abc").
        assert_eq!(
            hash_hex(Algorithm::Sha512_256, &[b"abc"]),
            "53048e2681941ef99b2e29b76b4c7dabe4c2d0c634fc6d46e0e2f13107e7af23"
        );
        assert_eq!(
            hash_hex(Algorithm::Sha256, &[b"abc"]),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
        assert_eq!(hash_hex(Algorithm::Md5, &[b"a", b"b"]), hash_hex(Algorithm::Md5, &[b"a:b"]));
    }

    #[test]
    fn nonce_count_per_nonce() {
        let first = challenge("Digest realm=\"r\", nonce=\"n1\", qop=auth");
        let second = challenge("Digest realm=\"r\", nonce=\"n2\", qop=auth");
        let mut client = DigestClient::new("u", "p");
        let ncs: Vec<u32> = (0..3).map(|_| client.authorize(&first, "REGISTER", "sip:r", b"", "c").nc()).collect();
        assert_eq!(ncs, [1, 2, 3]);
        let a = client.authorize(&second, "REGISTER", "sip:r", b"", "c");
        assert_eq!(a.nc(), 1);
        assert!(a.to_string().ends_with("nc=00000001"));
        assert_eq!(client.authorize(&second, "REGISTER", "sip:r", b"", "c").nc(), 2);
        // Back to the first nonce (e.g. a proxy and a registrar in turn).
        assert_eq!(client.authorize(&first, "REGISTER", "sip:r", b"", "c").nc(), 4);
    }

    #[test]
    fn nonce_count_is_hex_and_forgets_old_nonces() {
        let c = challenge("Digest realm=\"r\", nonce=\"n\", qop=auth");
        let mut client = DigestClient::new("u", "p");
        let mut last = None;
        for _ in 0..16 {
            last = Some(client.authorize(&c, "REGISTER", "sip:r", b"", "c"));
        }
        let last = last.map(|a| a.to_string()).unwrap_or_default();
        assert!(last.ends_with("nc=00000010"), "{last}");

        for i in 0..MAX_TRACKED_NONCES {
            let other = challenge(&format!("Digest realm=\"r\", nonce=\"x{i}\", qop=auth"));
            let _ = client.authorize(&other, "REGISTER", "sip:r", b"", "c");
        }
        assert!(client.nonce_counts.len() <= MAX_TRACKED_NONCES);
        assert_eq!(client.authorize(&c, "REGISTER", "sip:r", b"", "c").nc(), 1);
    }

    #[test]
    fn stale_parsing() {
        let cases = [
            ("stale=true", true),
            ("stale=TRUE", true),
            ("stale=\"True\"", true),
            ("stale = true ", true),
            ("stale=false", false),
            ("stale=FALSE", false),
            ("stale=yes", false),
        ];
        for (param, expected) in cases {
            let c = challenge(&format!("Digest realm=\"r\", nonce=\"n\", {param}"));
            assert_eq!(c.stale, expected, "{param}");
        }
        assert!(!challenge("Digest realm=\"r\", nonce=\"n\"").stale);
    }

    #[test]
    fn qop_list_parsing() {
        let cases: [(&str, &[Qop]); 9] = [
            ("qop=\"auth,auth-int\"", &[Qop::Auth, Qop::AuthInt]),
            ("qop=\"auth-int,auth\"", &[Qop::AuthInt, Qop::Auth]),
            ("qop=auth", &[Qop::Auth]),
            ("QOP = AUTH-INT", &[Qop::AuthInt]),
            ("qop=\"  Auth ,\tAUTH-Int  \"", &[Qop::Auth, Qop::AuthInt]),
            ("qop=\"auth,,token68,auth\"", &[Qop::Auth]),
            ("qop=\"bogus\"", &[]),
            ("qop=\"\"", &[]),
            ("opaque=\"qop=auth\"", &[]),
        ];
        for (param, expected) in cases {
            let c = challenge(&format!("Digest realm=\"r\", {param}, nonce=\"n\""));
            assert_eq!(c.qop, expected, "{param}");
        }
    }

    #[test]
    fn parses_syntax_variants() {
        let c = challenge(
            "  dIgEsT\tREALM = \"a \\\"quoted\\\" \\\\realm\" ,, NONCE=abc/def+==,\r\n \
             Opaque=\"\" , domain=\"sip:a sip:b\", foo=bar, algorithm=\"sha-512-256\",",
        );
        assert_eq!(c.realm, "a \"quoted\" \\realm");
        assert_eq!(c.nonce, "abc/def+==");
        assert_eq!(c.opaque.as_deref(), Some(""));
        assert_eq!(c.algorithm, Algorithm::Sha512_256);
        assert!(c.qop.is_empty());
        assert!(!c.proxy);
        // First occurrence wins.
        let c = challenge("Digest realm=one, realm=two, nonce=n");
        assert_eq!(c.realm, "one");
    }

    #[test]
    fn algorithm_tokens() {
        for (token, alg) in [
            ("MD5", Algorithm::Md5),
            ("md5-SESS", Algorithm::Md5Sess),
            ("sha-256", Algorithm::Sha256),
            ("SHA-256-Sess", Algorithm::Sha256Sess),
            ("Sha-512-256", Algorithm::Sha512_256),
            ("SHA-512-256-SESS", Algorithm::Sha512_256Sess),
        ] {
            assert_eq!(token.parse::<Algorithm>(), Ok(alg));
            assert_eq!(alg.as_str().parse::<Algorithm>(), Ok(alg));
            assert_eq!(alg.to_string(), alg.as_str());
        }
        assert_eq!(challenge("Digest realm=r, nonce=n").algorithm, Algorithm::Md5);
        assert_eq!(Algorithm::default(), Algorithm::Md5);
    }

    #[test]
    fn errors() {
        let cases: [(&str, ChallengeError); 8] = [
            ("Basic realm=\"r\"", ChallengeError::UnsupportedScheme("Basic".into())),
            ("Digest realm=r, nonce=n, algorithm=SHA-1", ChallengeError::UnsupportedAlgorithm("SHA-1".into())),
            (
                "Digest realm=r, nonce=n, algorithm=\"AKAv1-MD5\"",
                ChallengeError::UnsupportedAlgorithm("AKAv1-MD5".into()),
            ),
            ("Digest nonce=n", ChallengeError::MissingRealm),
            ("Digest realm=r, qop=auth", ChallengeError::MissingNonce),
            ("Digest", ChallengeError::MissingRealm),
            ("Digest realm=\"r, nonce=n", ChallengeError::Malformed { reason: "unterminated quoted string", at: 24 }),
            ("", ChallengeError::Malformed { reason: "expected an authentication scheme", at: 0 }),
        ];
        for (value, expected) in cases {
            assert_eq!(Challenge::parse(value, false), Err(expected), "{value:?}");
        }
        for value in [
            "Digest realm",
            "Digest realm=",
            "Digest realm r",
            "Digest realm=r nonce=n",
            "Digest realm=\"r\"x, nonce=n",
            "Digest =r",
            "Digest, realm=r, nonce=n",
            "Digest realm=\"a\r\nb\", nonce=n",
            "Digest realm=r\0, nonce=n",
            "Digest realm=\"r\\",
        ] {
            assert!(matches!(Challenge::parse(value, false), Err(ChallengeError::Malformed { .. })), "{value:?}");
        }
        let long = "X".repeat(1000);
        match Challenge::parse(&long, false) {
            Err(ChallengeError::UnsupportedScheme(s)) => assert_eq!(s.len(), MAX_ERROR_TEXT),
            other => panic!("{other:?}"),
        }
        let e: Box<dyn std::error::Error> = Box::new(ChallengeError::MissingNonce);
        assert_eq!(e.to_string(), "digest challenge has no nonce");
    }

    #[test]
    fn preferred_picks_strongest() {
        let md5 = challenge("Digest realm=r, nonce=a, qop=auth, algorithm=MD5");
        let sha256 = challenge("Digest realm=r, nonce=b, qop=auth, algorithm=SHA-256");
        let sha512 = challenge("Digest realm=r, nonce=c, qop=auth, algorithm=SHA-512-256");
        let implicit_md5 = challenge("Digest realm=r, nonce=d, qop=auth");
        assert_eq!(preferred(&[]), None);
        assert_eq!(preferred(&[md5.clone(), sha256.clone()]).map(|c| c.algorithm), Some(Algorithm::Sha256));
        assert_eq!(preferred(&[sha256.clone(), md5.clone()]).map(|c| c.algorithm), Some(Algorithm::Sha256));
        assert_eq!(
            preferred(&[md5.clone(), sha512.clone(), sha256.clone()]).map(|c| c.algorithm),
            Some(Algorithm::Sha512_256)
        );
        assert_eq!(preferred(&[implicit_md5.clone(), md5.clone()]).map(|c| c.nonce.as_str()), Some("d"));
    }

    #[test]
    fn debug_redacts_secrets() {
        let c = challenge("Digest realm=\"r\", nonce=\"n\", qop=auth");
        let mut client = DigestClient::new("alice", "hunter2-very-secret");
        let a = client.authorize(&c, "REGISTER", "sip:r", b"", "c");
        let response = a.response.clone();
        for text in [format!("{client:?}"), format!("{client:#?}"), format!("{a:?}"), format!("{a:#?}")] {
            assert!(!text.contains("hunter2"), "{text}");
            assert!(!text.contains(&response), "{text}");
            assert!(text.contains("alice"), "{text}");
        }
        assert!(format!("{client:?}").contains("Password(<redacted>)"));
        assert!(format!("{a:?}").contains("response: <redacted>"));
        // The header itself must carry the response, of course.
        assert!(a.to_string().contains(&response));
    }

    #[test]
    fn proxy_challenge_gives_proxy_authorization() {
        let value = "Digest realm=\"proxy\", nonce=\"n\", qop=auth";
        let c = Challenge::parse(value, true);
        assert!(c.as_ref().is_ok_and(|c| c.proxy));
        let mut client = DigestClient::new("u", "p");
        if let Ok(c) = c {
            let a = client.authorize(&c, "INVITE", "sip:bob@example.com", b"", "c");
            assert!(a.is_proxy());
            assert_eq!(a.header_name(), "Proxy-Authorization");
            assert_eq!(a.realm(), "proxy");
        }
        let a = client.authorize(&challenge(value), "INVITE", "sip:b", b"", "c");
        assert!(!a.is_proxy());
        assert_eq!(a.header_name(), "Authorization");
    }

    #[test]
    fn display_escapes_quoted_values() {
        let c = challenge(r#"Digest realm="a\"b\\c", nonce="n", qop=auth"#);
        assert_eq!(c.realm, "a\"b\\c");
        let mut client = DigestClient::new("we\"ird\\user\r\nX-Injected: 1", "p");
        let s = client.authorize(&c, "REGISTER", "sip:r", b"", "c").to_string();
        assert!(s.starts_with(r#"Digest username="we\"ird\\userX-Injected: 1", realm="a\"b\\c", "#), "{s}");
        assert!(!s.contains('\r') && !s.contains('\n'));
    }

    #[test]
    fn kamailio_style_challenge() {
        let value = "Digest realm=\"example.com\", nonce=\"ZwAbCdZv4R3Jk9mQz0hX5yWcT1nLpUeS\", \
                     qop=\"auth\"";
        let c = challenge(value);
        assert_eq!(
            c,
            Challenge {
                realm: "example.com".into(),
                nonce: "ZwAbCdZv4R3Jk9mQz0hX5yWcT1nLpUeS".into(),
                opaque: None,
                algorithm: Algorithm::Md5,
                qop: vec![Qop::Auth],
                stale: false,
                proxy: false,
            }
        );
        let mut client = DigestClient::new("alice", "secret");
        let a = client.authorize(&c, "REGISTER", "sip:example.com", b"", "0a4f113b");
        let s = a.to_string();
        assert!(
            s.starts_with(
                "Digest username=\"alice\", realm=\"example.com\", \
                 nonce=\"ZwAbCdZv4R3Jk9mQz0hX5yWcT1nLpUeS\", uri=\"sip:example.com\", response=\""
            ),
            "{s}"
        );
        assert!(s.ends_with("\", algorithm=MD5, cnonce=\"0a4f113b\", qop=auth, nc=00000001"));
        assert!(!s.contains("opaque"));

        // Asterisk puts algorithm first and offers no qop.
        let c = challenge("Digest algorithm=MD5, realm=\"asterisk\", nonce=\"1b2c3d4e\"");
        assert_eq!((c.realm.as_str(), c.qop.len()), ("asterisk", 0));
        // FreeSWITCH.
        let c = challenge(
            "Digest realm=\"pbx.example.com\", nonce=\"2b9f0a5e-1d2c-4b7a-9e3f-6c8d7a1b2c3d\", \
             algorithm=MD5, qop=\"auth\"",
        );
        assert_eq!(c.qop, [Qop::Auth]);
    }

    /// One `name=value` parameter of arbitrary, mostly plausible, shape.
    fn param_soup() -> impl Strategy<Value = String> {
        let name = prop_oneof![
            Just("realm".to_owned()),
            Just("nonce".to_owned()),
            Just("opaque".to_owned()),
            Just("algorithm".to_owned()),
            Just("qop".to_owned()),
            Just("stale".to_owned()),
            Just("REALM".to_owned()),
            "[a-zA-Z-]{0,8}",
            "\\PC{0,4}",
        ];
        let value = prop_oneof![
            "[a-zA-Z0-9+/=.-]{0,12}",
            "\"[^\"\\\\]{0,12}\"",
            "\"([^\"]|\\\\.){0,12}\"?",
            Just("MD5-sess".to_owned()),
            Just("SHA-512-256".to_owned()),
            Just("\"auth, auth-int\"".to_owned()),
            Just("TRUE".to_owned()),
            "\\PC{0,6}",
            any::<String>(),
        ];
        let sep_eq = prop_oneof![Just("="), Just(" = "), Just("\t=\r\n "), Just(""), Just("==")];
        (name, sep_eq, value).prop_map(|(n, e, v)| format!("{n}{e}{v}"))
    }

    fn separator() -> impl Strategy<Value = &'static str> {
        prop_oneof![Just(", "), Just(","), Just(" ,, "), Just("\t,\r\n "), Just(" "), Just(""), Just("\""), Just("\\"),]
    }

    proptest! {
        #[test]
        fn parse_never_panics_on_arbitrary_strings(s in any::<String>(), proxy in any::<bool>()) {
            let _ = Challenge::parse(&s, proxy);
        }

        #[test]
        fn parse_never_panics_on_digest_param_soup(
            params in proptest::collection::vec((param_soup(), separator()), 0..8),
            tail in "\\PC{0,4}",
        ) {
            let mut value = String::from("Digest ");
            for (p, sep) in &params {
                value.push_str(p);
                value.push_str(sep);
            }
            value.push_str(&tail);
            if let Ok(c) = Challenge::parse(&value, false) {
                // Whatever parses can be answered without panicking.
                let mut client = DigestClient::new("u", "p");
                let a = client.authorize(&c, "REGISTER", "sip:x", b"body", "cn");
                prop_assert!(a.to_string().starts_with("Digest username=\"u\""));
            }
        }

        #[test]
        fn quoted_values_round_trip(
            realm in "[^\\x00-\\x08\\x0a-\\x1f\\x7f]{0,24}",
            nonce in "[^\\x00-\\x08\\x0a-\\x1f\\x7f]{0,24}",
        ) {
            // Build a challenge with the same escaping the header writer
            // uses, and check the parser gets the originals back.
            struct Quoted<'a>(&'a str);
            impl fmt::Display for Quoted<'_> {
                fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                    write_quoted(f, self.0)
                }
            }
            let value = format!(
                "Digest realm={}, nonce={}, qop=auth",
                Quoted(&realm),
                Quoted(&nonce)
            );
            let parsed = Challenge::parse(&value, false);
            prop_assert!(parsed.is_ok(), "{value:?}: {parsed:?}");
            if let Ok(c) = parsed {
                prop_assert_eq!(c.realm, realm);
                prop_assert_eq!(c.nonce, nonce);
            }
        }
    }
}
