//! The store's auth thread: it owns its own SQLite connection to the
//! server's database file (WAL lets it share the file with the store
//! thread) and does every argon2id hash and every accounts query, so the
//! loop never waits for a 19 MiB hash or the disk. Password hashes never
//! leave this thread: the loop only ever learns "ok", "wrong" or "no
//! account", and the token it must hand out. Replies go back on a channel
//! and the loop's `mio::Waker` tells it to look (like the disk thread).

use std::collections::VecDeque;
use std::path::Path;
use std::sync::Arc;
use std::sync::mpsc::{Receiver, Sender, channel};
use std::thread::JoinHandle;

use mio::Waker;

use super::db::{AccountDb, AccountError, Check, NewToken};

/// What a `hello` carries to prove who it is.
#[derive(Debug)]
pub(crate) enum Credential {
    /// Nothing: a guest (still checked: is the name registered?).
    None,
    /// A password.
    Password(String),
    /// A session token (64 hex digits).
    Token(String),
}

/// Work for the auth thread.
#[derive(Debug)]
pub(crate) enum AuthJob {
    /// A `hello` for `name` (validated): is it registered, and is the
    /// credential right? `id` matches the reply to the waiting connection.
    Hello {
        /// Request id.
        id: u64,
        /// The validated name.
        name: String,
        /// What the hello carried.
        credential: Credential,
        /// Token lifetime for a new token.
        token_days: u32,
    },
    /// `register`: the member's current name with this password.
    Register {
        /// Request id.
        id: u64,
        /// The member's name.
        name: String,
        /// Already checked for length.
        password: String,
        /// Token lifetime.
        token_days: u32,
    },
    /// `change_password` for an authenticated member.
    ChangePassword {
        /// Request id.
        id: u64,
        /// The account's name.
        name: String,
        /// The current password.
        old: String,
        /// The new one, already checked for length.
        new: String,
        /// Token lifetime for the replacement token.
        token_days: u32,
    },
    /// `logout`: revoke one token. No reply.
    Revoke {
        /// The token's SHA-256.
        hash: [u8; 32],
    },
    /// The operator deletes an account (and its tokens).
    Delete {
        /// The name (any look-alike finds it).
        name: String,
        /// Where the answer goes: whether there was such an account.
        reply: Sender<Result<bool, String>>,
    },
}

/// What the auth thread answers.
#[derive(Debug)]
pub(crate) enum AuthDone {
    /// The answer to [`AuthJob::Hello`].
    Hello {
        /// Request id.
        id: u64,
        /// The outcome.
        outcome: HelloOutcome,
    },
    /// The answer to [`AuthJob::Register`]: the first token, or why not.
    Register {
        /// Request id.
        id: u64,
        /// `Ok(token)`, `Err(Refusal)`.
        outcome: Result<NewToken, Refusal>,
    },
    /// The answer to [`AuthJob::ChangePassword`].
    ChangePassword {
        /// Request id.
        id: u64,
        /// `Ok(new token)`, `Err(Refusal)`.
        outcome: Result<NewToken, Refusal>,
    },
}

/// Why a request was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Refusal {
    /// The name (or a look-alike) is registered already.
    Taken,
    /// Wrong password.
    Wrong,
    /// The database failed (logged by the thread).
    Unavailable,
}

/// The outcome of a `hello`.
#[derive(Debug)]
pub(crate) enum HelloOutcome {
    /// Not registered: a guest login (credentials given for an unregistered
    /// name are [`HelloOutcome::Failed`]).
    Guest,
    /// Registered and no credential given.
    Registered,
    /// Registered and the credential was right: the account's own
    /// spelling of the name, the token issued (password logins) or the
    /// token used (token logins, `issued` false).
    Authenticated {
        /// The account's name.
        name: String,
        /// The token's text (`None` for a token login: the client has it).
        issued: Option<String>,
        /// The SHA-256 of the connection's token, for `logout`.
        hash: [u8; 32],
    },
    /// Wrong credential, or a credential for a name not registered.
    Failed,
    /// The database failed.
    Unavailable,
}

/// The loop's side of the auth thread.
pub(crate) struct AuthWorker {
    /// Jobs for the thread; dropped first to end it.
    jobs: Option<Sender<AuthJob>>,
    /// Its answers.
    done: Receiver<AuthDone>,
    /// Joined on drop.
    thread: Option<JoinHandle<()>>,
}

impl AuthWorker {
    /// Opens the database (so a start with an unusable file fails now, not
    /// at the first login) and starts the thread.
    pub(crate) fn start(path: &Path, waker: Arc<Waker>) -> Result<Self, AccountError> {
        let db = AccountDb::open(path)?;
        let (jobs, rx) = channel::<AuthJob>();
        let (tx, done) = channel::<AuthDone>();
        let thread = std::thread::Builder::new()
            .name("chatcore-auth".into())
            .spawn(move || run(db, rx, tx, waker))
            .map_err(|e| AccountError::Hash(format!("cannot start the auth thread: {e}")))?;
        Ok(Self {
            jobs: Some(jobs),
            done,
            thread: Some(thread),
        })
    }

    /// Hands a job over (never blocks).
    pub(crate) fn submit(&self, job: AuthJob) {
        if let Some(jobs) = &self.jobs {
            let _ = jobs.send(job);
        }
    }

    /// The next answer, if one is ready.
    pub(crate) fn poll(&self) -> Option<AuthDone> {
        self.done.try_recv().ok()
    }
}

impl Drop for AuthWorker {
    fn drop(&mut self) {
        self.jobs = None;
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// Logs a database failure (the loop only learns "unavailable").
fn logged<T>(r: Result<T, AccountError>) -> Option<T> {
    match r {
        Ok(v) => Some(v),
        Err(e) => {
            tracing::warn!(error = %e, "account database failure");
            None
        }
    }
}

/// Whether a job costs an argon2id hash (tens of milliseconds).
fn costly(job: &AuthJob) -> bool {
    matches!(
        job,
        AuthJob::Hello {
            credential: Credential::Password(_),
            ..
        } | AuthJob::Register { .. }
            | AuthJob::ChangePassword { .. }
    )
}

/// The thread. Cheap jobs (guest and token logins, revocations, deletions:
/// one indexed query each) go before costly ones (a hash each), so a
/// queue of password checks never delays a guest's login; within each
/// kind, jobs run in order. The loop is woken whenever answers are waiting
/// and no cheap job is left, so cheap answers are batched into one wake.
fn run(mut db: AccountDb, jobs: Receiver<AuthJob>, done: Sender<AuthDone>, waker: Arc<Waker>) {
    let mut cheap: VecDeque<AuthJob> = VecDeque::new();
    let mut dear: VecDeque<AuthJob> = VecDeque::new();
    let mut unannounced = false;
    let sort = |job: AuthJob, cheap: &mut VecDeque<AuthJob>, dear: &mut VecDeque<AuthJob>| {
        if costly(&job) {
            dear.push_back(job);
        } else {
            cheap.push_back(job);
        }
    };
    loop {
        if cheap.is_empty() && dear.is_empty() {
            match jobs.recv() {
                Ok(job) => sort(job, &mut cheap, &mut dear),
                Err(_) => return,
            }
        }
        while let Ok(job) = jobs.try_recv() {
            sort(job, &mut cheap, &mut dear);
        }
        let Some(job) = cheap.pop_front().or_else(|| dear.pop_front()) else {
            continue;
        };
        if let Some(reply) = serve(&mut db, job) {
            if done.send(reply).is_err() {
                return;
            }
            unannounced = true;
        }
        if unannounced && cheap.is_empty() {
            let _ = waker.wake();
            unannounced = false;
        }
    }
}

/// Does one job.
fn serve(db: &mut AccountDb, job: AuthJob) -> Option<AuthDone> {
    match job {
        AuthJob::Hello {
            id,
            name,
            credential,
            token_days,
        } => Some(AuthDone::Hello {
            id,
            outcome: hello(db, &name, credential, token_days),
        }),
        AuthJob::Register {
            id,
            name,
            password,
            token_days,
        } => {
            let outcome = match logged(db.register(&name, &password)) {
                Some(true) => logged(db.issue_token(&name, token_days)).ok_or(Refusal::Unavailable),
                Some(false) => Err(Refusal::Taken),
                None => Err(Refusal::Unavailable),
            };
            Some(AuthDone::Register { id, outcome })
        }
        AuthJob::ChangePassword {
            id,
            name,
            old,
            new,
            token_days,
        } => {
            let outcome = match logged(db.change_password(&name, &old, &new)) {
                Some(Check::Ok(_)) => {
                    logged(db.issue_token(&name, token_days)).ok_or(Refusal::Unavailable)
                }
                Some(_) => Err(Refusal::Wrong),
                None => Err(Refusal::Unavailable),
            };
            Some(AuthDone::ChangePassword { id, outcome })
        }
        AuthJob::Revoke { hash } => {
            logged(db.revoke_token(&hash));
            None
        }
        AuthJob::Delete { name, reply } => {
            let _ = reply.send(db.delete(&name).map_err(|e| e.to_string()));
            None
        }
    }
}

/// Answers a `hello`.
fn hello(db: &mut AccountDb, name: &str, credential: Credential, token_days: u32) -> HelloOutcome {
    let check = match &credential {
        Credential::None => {
            return match logged(db.is_registered(name)) {
                Some(true) => HelloOutcome::Registered,
                Some(false) => HelloOutcome::Guest,
                None => HelloOutcome::Unavailable,
            };
        }
        Credential::Password(p) => db.check_password(name, p),
        Credential::Token(t) => db.check_token(name, t),
    };
    match logged(check) {
        Some(Check::Ok(account)) => match credential {
            Credential::Token(t) => match super::db::token_hash(&t) {
                Some(hash) => HelloOutcome::Authenticated {
                    name: account,
                    issued: None,
                    hash,
                },
                None => HelloOutcome::Failed,
            },
            _ => match logged(db.issue_token(&account, token_days)) {
                Some(t) => HelloOutcome::Authenticated {
                    name: account,
                    issued: Some(t.text),
                    hash: t.hash,
                },
                None => HelloOutcome::Unavailable,
            },
        },
        Some(Check::Wrong | Check::NoAccount) => HelloOutcome::Failed,
        None => HelloOutcome::Unavailable,
    }
}
