//! Secret values handled by the user agent.
//!
//! This module owns [`Password`], the wrapper that carries a SIP account's
//! password from configuration to the digest computation in
//! `dialog::auth`. The wrapper keeps the value out of logs and error
//! messages: its `Debug` output is redacted, it has no `Display`, and the
//! plain text can only be read inside this crate through
//! `Password::expose`. When a `Password` is dropped its buffer is
//! overwritten as a best effort (copies made elsewhere, such as by the
//! allocator on growth, are out of its reach).

use std::fmt;

/// A password, kept out of `Debug` output and logs.
///
/// Build one with [`Password::new`] or `From<&str>` / `From<String>`.
/// `Debug` prints `Password(<redacted>)`; there is deliberately no
/// `Display` and no `PartialEq`, so the value cannot be formatted or
/// compared by accident.
#[derive(Clone)]
pub struct Password(String);

impl Password {
    /// Wraps a password.
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }

    /// The plain-text password, for the digest computation only.
    ///
    /// Never log, format or store the returned value.
    pub(crate) fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Password {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Password(<redacted>)")
    }
}

impl From<&str> for Password {
    fn from(value: &str) -> Self {
        Self::new(value)
    }
}

impl From<String> for Password {
    fn from(value: String) -> Self {
        Self::new(value)
    }
}

impl Drop for Password {
    fn drop(&mut self) {
        // Best-effort wipe without `unsafe`: take the buffer, zero its bytes
        // and keep the optimiser from discarding the writes as dead stores.
        let mut bytes = std::mem::take(&mut self.0).into_bytes();
        bytes.fill(0);
        std::hint::black_box(&bytes);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_is_redacted() {
        let p = Password::new("hunter2");
        assert_eq!(format!("{p:?}"), "Password(<redacted>)");
        assert_eq!(format!("{p:#?}"), "Password(<redacted>)");
        assert!(!format!("{p:?}").contains("hunter2"));
    }

    #[test]
    fn conversions_and_expose() {
        let a = Password::from("s3cret");
        let b = Password::from(String::from("s3cret"));
        let c = b.clone();
        assert_eq!(a.expose(), "s3cret");
        assert_eq!(b.expose(), "s3cret");
        assert_eq!(c.expose(), "s3cret");
        drop(b);
        assert_eq!(c.expose(), "s3cret");
    }
}
