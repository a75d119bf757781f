//! The accounts tables and every operation on them, on one SQLite
//! connection. Used by the store's auth thread ([`super::thread`]) and by
//! the daemon's `chatserver accounts` subcommand, which opens the database
//! file directly (safe while the server runs: WAL lets readers and one
//! writer share the file, and `busy_timeout` waits out the other writer).
//!
//! Accounts are keyed by the confusable skeleton of the name (UTS #39,
//! [`crate::server::room::names::skeleton`]), so `alice` and `аlice` (with a
//! Cyrillic а) are one account: a look-alike cannot be registered twice.
//! Passwords are stored as argon2id PHC strings (salt and parameters
//! inside); session tokens are 32 random bytes handed to the client as 64
//! hex digits, of which only the SHA-256 is stored.

use std::path::Path;
use std::time::Duration;

use argon2::Argon2;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use rusqlite::{Connection, OptionalExtension, params};
use sha2::{Digest, Sha256};
use thiserror::Error;

use crate::server::room::names::skeleton;
use crate::time::now_ms;

/// Argon2id memory cost in KiB (19 MiB), the first of OWASP's recommended
/// argon2id settings; with [`ARGON2_T`] and [`ARGON2_P`] a hash takes
/// about 60 ms on a busy core (docs/operations.md), which is what makes
/// guessing slow.
pub const ARGON2_M_KIB: u32 = 19 * 1024;
/// Argon2id iterations (OWASP: 2 with 19 MiB).
pub const ARGON2_T: u32 = 2;
/// Argon2id parallelism (OWASP: 1).
pub const ARGON2_P: u32 = 1;
/// Shortest password accepted, in bytes of UTF-8.
pub const PASSWORD_MIN: usize = 8;
/// Longest password accepted, in bytes: hashing cost must not depend on
/// what a client sends.
pub const PASSWORD_MAX: usize = 1024;
/// Live tokens kept per account; issuing one more drops the oldest, so a
/// client that logs in in a loop cannot grow the table.
pub const TOKENS_PER_ACCOUNT: i64 = 32;
/// How long a writer waits for another writer (the server, or this
/// subcommand) before giving up.
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

/// Why an account operation failed.
#[derive(Debug, Error)]
pub enum AccountError {
    /// The database could not be opened, read or written.
    #[error("account database: {0}")]
    Db(#[from] rusqlite::Error),
    /// The database's schema is newer than this binary, or a migration failed.
    #[error(transparent)]
    Schema(#[from] crate::server::store::StoreError),
    /// Hashing failed (never with valid parameters; kept apart from `Db`).
    #[error("password hashing failed: {0}")]
    Hash(String),
}

/// One account as the operator sees it (`chatserver accounts list`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccountInfo {
    /// The registered name, as its owner spelled it.
    pub name: String,
    /// When it was registered, ms since the Unix epoch.
    pub created_ms: i64,
    /// Live (unexpired) session tokens.
    pub tokens: u64,
}

/// A new session token: what the client gets and what the server keeps.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewToken {
    /// 64 lowercase hex digits, sent once in `welcome`/`registered`.
    pub text: String,
    /// Its SHA-256, the only form stored.
    pub hash: [u8; 32],
}

/// The outcome of checking a name's credentials.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Check {
    /// The name (or a look-alike) is not registered.
    NoAccount,
    /// Registered, and the credential is wrong, expired or revoked.
    Wrong,
    /// Registered, and the credential is right: the account's name.
    Ok(String),
}

/// The argon2id hasher with the documented parameters ([`ARGON2_M_KIB`],
/// [`ARGON2_T`], [`ARGON2_P`]; argon2 crate 0.5's defaults are the same).
fn hasher() -> Argon2<'static> {
    match argon2::Params::new(ARGON2_M_KIB, ARGON2_T, ARGON2_P, None) {
        Ok(p) => Argon2::new(argon2::Algorithm::Argon2id, argon2::Version::V0x13, p),
        Err(_) => Argon2::default(),
    }
}

/// Hashes `password` with a fresh salt into a PHC string.
fn hash_password(password: &str) -> Result<String, AccountError> {
    let salt = SaltString::encode_b64(&rand::random::<[u8; 16]>())
        .map_err(|e| AccountError::Hash(e.to_string()))?;
    hasher()
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| AccountError::Hash(e.to_string()))
}

/// Whether `password` matches the stored PHC string (a corrupt one never does).
fn verify_password(stored: &str, password: &str) -> bool {
    PasswordHash::new(stored)
        .is_ok_and(|h| hasher().verify_password(password.as_bytes(), &h).is_ok())
}

/// Whether a password is acceptable: [`PASSWORD_MIN`]..=[`PASSWORD_MAX`] bytes.
pub fn password_ok(password: &str) -> bool {
    (PASSWORD_MIN..=PASSWORD_MAX).contains(&password.len())
}

/// The SHA-256 of a token given as 64 hex digits, or `None` if it is not.
pub fn token_hash(text: &str) -> Option<[u8; 32]> {
    if text.len() != 64 {
        return None;
    }
    let mut raw = [0u8; 32];
    for (i, pair) in text.as_bytes().chunks(2).enumerate() {
        let s = std::str::from_utf8(pair).ok()?;
        raw[i] = u8::from_str_radix(s, 16).ok()?;
    }
    Some(Sha256::digest(raw).into())
}

/// The accounts tables on one connection.
pub struct AccountDb {
    /// The connection; this struct is its only user.
    conn: Connection,
}

impl AccountDb {
    /// Opens (creating if needed) the database at `path` in WAL mode with a
    /// busy timeout, and creates the accounts tables if missing.
    pub fn open(path: &Path) -> Result<Self, AccountError> {
        let conn = Connection::open(path)?;
        conn.busy_timeout(BUSY_TIMEOUT)?;
        conn.pragma_update(None, "journal_mode", "WAL")?;
        let mut conn = conn;
        crate::server::store::schema::migrate(&mut conn)?;
        Ok(Self { conn })
    }

    /// The stored name and password hash of the account `name` looks like.
    fn lookup(&self, name: &str) -> Result<Option<(String, String)>, AccountError> {
        Ok(self
            .conn
            .query_row(
                "SELECT name, hash FROM accounts WHERE skeleton = ?1",
                params![skeleton(name)],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .optional()?)
    }

    /// Whether `name` or a look-alike is registered.
    pub fn is_registered(&self, name: &str) -> Result<bool, AccountError> {
        Ok(self.lookup(name)?.is_some())
    }

    /// Registers `name` with `password`. `Ok(false)` if it or a look-alike
    /// is registered already.
    pub fn register(&mut self, name: &str, password: &str) -> Result<bool, AccountError> {
        if self.lookup(name)?.is_some() {
            return Ok(false);
        }
        let hash = hash_password(password)?;
        let now = now_ms();
        let n = self.conn.execute(
            "INSERT OR IGNORE INTO accounts(skeleton, name, hash, created, updated)
             VALUES (?1, ?2, ?3, ?4, ?4)",
            params![skeleton(name), name, hash, now],
        )?;
        Ok(n == 1)
    }

    /// Checks `password` for `name`.
    pub fn check_password(&self, name: &str, password: &str) -> Result<Check, AccountError> {
        Ok(match self.lookup(name)? {
            None => Check::NoAccount,
            Some((stored_name, hash)) if verify_password(&hash, password) => Check::Ok(stored_name),
            Some(_) => Check::Wrong,
        })
    }

    /// Checks a session token for `name`: it must exist, belong to that
    /// account and not be expired.
    pub fn check_token(&self, name: &str, token: &str) -> Result<Check, AccountError> {
        let Some((stored_name, _)) = self.lookup(name)? else {
            return Ok(Check::NoAccount);
        };
        let Some(hash) = token_hash(token) else {
            return Ok(Check::Wrong);
        };
        let live: Option<i64> = self
            .conn
            .query_row(
                "SELECT expires FROM tokens WHERE hash = ?1 AND skeleton = ?2 AND expires > ?3",
                params![&hash[..], skeleton(name), now_ms()],
                |r| r.get(0),
            )
            .optional()?;
        Ok(if live.is_some() {
            Check::Ok(stored_name)
        } else {
            Check::Wrong
        })
    }

    /// Issues a token for `name`'s account valid for `days` days, dropping
    /// expired tokens and the oldest beyond [`TOKENS_PER_ACCOUNT`].
    pub fn issue_token(&mut self, name: &str, days: u32) -> Result<NewToken, AccountError> {
        let raw: [u8; 32] = rand::random();
        let hash: [u8; 32] = Sha256::digest(raw).into();
        let text: String = raw.iter().map(|b| format!("{b:02x}")).collect();
        let now = now_ms();
        let expires = now.saturating_add(i64::from(days).saturating_mul(86_400_000));
        let skel = skeleton(name);
        let tx = self.conn.transaction()?;
        tx.execute(
            "DELETE FROM tokens WHERE skeleton = ?1 AND expires <= ?2",
            params![skel, now],
        )?;
        tx.execute(
            "DELETE FROM tokens WHERE skeleton = ?1 AND hash NOT IN
             (SELECT hash FROM tokens WHERE skeleton = ?1 ORDER BY created DESC LIMIT ?2)",
            params![skel, TOKENS_PER_ACCOUNT - 1],
        )?;
        tx.execute(
            "INSERT INTO tokens(hash, skeleton, created, expires) VALUES (?1, ?2, ?3, ?4)",
            params![&hash[..], skel, now, expires],
        )?;
        tx.commit()?;
        Ok(NewToken { text, hash })
    }

    /// Revokes one token (by its hash). `true` if it existed.
    pub fn revoke_token(&mut self, hash: &[u8; 32]) -> Result<bool, AccountError> {
        Ok(self
            .conn
            .execute("DELETE FROM tokens WHERE hash = ?1", params![&hash[..]])?
            == 1)
    }

    /// Replaces `name`'s password after checking the old one, revoking
    /// every token of the account.
    pub fn change_password(
        &mut self,
        name: &str,
        old: &str,
        new: &str,
    ) -> Result<Check, AccountError> {
        let check = self.check_password(name, old)?;
        if let Check::Ok(_) = check {
            let hash = hash_password(new)?;
            let skel = skeleton(name);
            let tx = self.conn.transaction()?;
            tx.execute(
                "UPDATE accounts SET hash = ?1, updated = ?2 WHERE skeleton = ?3",
                params![hash, now_ms(), skel],
            )?;
            tx.execute("DELETE FROM tokens WHERE skeleton = ?1", params![skel])?;
            tx.commit()?;
        }
        Ok(check)
    }

    /// Deletes the account `name` looks like and all its tokens. `true` if
    /// there was one.
    pub fn delete(&mut self, name: &str) -> Result<bool, AccountError> {
        let skel = skeleton(name);
        let tx = self.conn.transaction()?;
        tx.execute("DELETE FROM tokens WHERE skeleton = ?1", params![skel])?;
        let n = tx.execute("DELETE FROM accounts WHERE skeleton = ?1", params![skel])?;
        tx.commit()?;
        Ok(n == 1)
    }

    /// Every account, by name.
    pub fn list(&self) -> Result<Vec<AccountInfo>, AccountError> {
        let mut stmt = self.conn.prepare(
            "SELECT a.name, a.created,
                    (SELECT COUNT(*) FROM tokens t WHERE t.skeleton = a.skeleton AND t.expires > ?1)
             FROM accounts a ORDER BY a.name",
        )?;
        let rows = stmt.query_map(params![now_ms()], |r| {
            Ok(AccountInfo {
                name: r.get(0)?,
                created_ms: r.get(1)?,
                tokens: r.get::<_, i64>(2)?.max(0) as u64,
            })
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn db(dir: &Path) -> AccountDb {
        AccountDb::open(&dir.join("chat.db")).expect("open")
    }

    fn tmp(name: &str) -> std::path::PathBuf {
        let d = std::env::temp_dir().join(format!("acct-db-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).expect("tmp dir");
        d
    }

    #[test]
    fn the_hash_is_argon2id_with_the_documented_parameters() {
        let h = hash_password("correct horse").expect("hash");
        assert!(h.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"), "{h}");
        assert!(verify_password(&h, "correct horse"));
        assert!(!verify_password(&h, "correct horsf"));
    }

    #[test]
    fn a_look_alike_name_is_the_same_account() {
        let d = tmp("lookalike");
        let mut db = db(&d);
        assert!(db.register("alice", "password1").expect("register"));
        assert!(!db.register("\u{0430}lice", "password2").expect("register"));
        assert_eq!(
            db.check_password("\u{0430}lice", "password1")
                .expect("check"),
            Check::Ok("alice".into())
        );
        let _ = std::fs::remove_dir_all(&d);
    }

    #[test]
    fn tokens_are_stored_hashed_and_capped_per_account() {
        let d = tmp("tokens");
        let mut db = db(&d);
        assert!(db.register("bob", "password1").expect("register"));
        let first = db.issue_token("bob", 30).expect("token");
        for _ in 0..TOKENS_PER_ACCOUNT + 5 {
            db.issue_token("bob", 30).expect("token");
        }
        assert_eq!(
            db.list().expect("list")[0].tokens,
            TOKENS_PER_ACCOUNT as u64
        );
        assert_eq!(
            db.check_token("bob", &first.text).expect("check"),
            Check::Wrong
        );
        let t = db.issue_token("bob", 30).expect("token");
        let stored: i64 = db
            .conn
            .query_row(
                "SELECT COUNT(*) FROM tokens WHERE hash = ?1",
                params![&t.hash[..]],
                |r| r.get(0),
            )
            .expect("count");
        assert_eq!(stored, 1);
        assert_eq!(
            db.check_token("bob", &t.text).expect("check"),
            Check::Ok("bob".into())
        );
        assert!(db.revoke_token(&t.hash).expect("revoke"));
        assert_eq!(db.check_token("bob", &t.text).expect("check"), Check::Wrong);
        let expired = db.issue_token("bob", 0).expect("token");
        assert_eq!(
            db.check_token("bob", &expired.text).expect("check"),
            Check::Wrong
        );
        let _ = std::fs::remove_dir_all(&d);
    }
}
