//! Who may call a [`TestServer`](crate::testkit::TestServer): API keys, master
//! keys, registered systems, and the test credentials every seed config accepts.
//!
//! A credential has a *name*, which is what the server records and reports, and
//! a secret, which is what the client sends. Secrets never appear in events,
//! statistics or `Debug` output.

use std::fmt;

/// The API key every seed config accepts (seed 004's `x-api-key`, seed 000's
/// non-master `X-Api-Key`, seed 002's per-account `X-Api-Key`); its name is
/// `"default"`.
pub const DEFAULT_API_KEY: &str = "test-api-key";
/// Seed 000's master key (name `"master"`), the only key allowed to read usage stats.
pub const MASTER_API_KEY: &str = "test-master-key";
/// Seed 002's registered system (`X-System`), as in the document's example.
pub const DEFAULT_SYSTEM: &str = "your-system";
/// The key of [`DEFAULT_SYSTEM`] (`X-System-Key`).
pub const DEFAULT_SYSTEM_KEY: &str = "test-system-key";

/// What a credential may do.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Role {
    /// An API key (seed 004, seed 000) or a per-account user key (seed 002).
    ApiKey,
    /// A seed 000 master key: an API key that may also read usage stats.
    MasterKey,
    /// A seed 002 registered system.
    System,
}

/// A name (what the server records) and a secret (what the client sends).
#[derive(Clone, PartialEq, Eq)]
pub struct Credential {
    /// What the credential may do.
    pub role: Role,
    /// The name the server records and reports; for a seed 002 system, the
    /// value of `X-System`.
    pub name: String,
    pub(crate) secret: String,
}

impl fmt::Debug for Credential {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Credential")
            .field("role", &self.role)
            .field("name", &self.name)
            .field("secret", &"<redacted>")
            .finish()
    }
}
