//! `chatserver accounts list|delete NAME [--data-dir DIR] [-c FILE]`: the operator's
//! admin path to the registered names. It opens the database file
//! (`DATA_DIR/chat.db`) directly, which is safe while the server runs:
//! the file is in WAL mode (readers never block the server's writer) and
//! both sides wait out each other's writes (`busy_timeout`). A deleted
//! account's tokens are revoked with it; a member logged in with it keeps
//! its session until it leaves.

use std::path::PathBuf;

use anyhow::Context;
use chatcore::server::accounts::AccountDb;
use clap::{Parser, Subcommand};

use crate::config::{STORE_FILE, default_data_dir, load_file};

/// Manage registered names (accounts) in the server's database.
#[derive(Debug, Parser)]
#[command(name = "chatserver accounts")]
pub struct AccountsCli {
    /// What to do.
    #[command(subcommand)]
    pub action: Action,
    /// Data directory holding chat.db [default: the server's default data
    /// directory, e.g. ~/.local/share/chatserver]
    #[arg(long, value_name = "DIR", global = true)]
    pub data_dir: Option<PathBuf>,
    /// The server's config file: its `data_dir` is used unless --data-dir
    /// is given (the same precedence as the server's)
    #[arg(long, short = 'c', value_name = "FILE", global = true)]
    pub config: Option<PathBuf>,
}

/// An accounts action.
#[derive(Debug, Subcommand)]
pub enum Action {
    /// Print every registered name, its registration time (ms since the
    /// Unix epoch) and its number of live session tokens.
    List,
    /// Delete a registered name (any look-alike spelling finds it) and
    /// revoke its tokens.
    Delete {
        /// The name.
        name: String,
    },
}

/// Runs the subcommand; `args` start with the program name.
pub fn run(args: Vec<String>) -> anyhow::Result<()> {
    // `chatserver accounts ...` -> parse as `chatserver accounts ...`.
    let cli = AccountsCli::try_parse_from(args.into_iter().skip(1))?;
    let from_file = match &cli.config {
        Some(path) => load_file(path)?.tls.data_dir,
        None => None,
    };
    let dir = match cli.data_dir.or(from_file) {
        Some(d) => d,
        None => default_data_dir()?,
    };
    let path = dir.join(STORE_FILE);
    if !path.exists() {
        anyhow::bail!(
            "no database at {} (has the server run there?)",
            path.display()
        );
    }
    let mut db =
        AccountDb::open(&path).with_context(|| format!("cannot open {}", path.display()))?;
    match cli.action {
        Action::List => {
            for a in db.list()? {
                println!(
                    "{}\tcreated_ms={}\ttokens={}",
                    a.name, a.created_ms, a.tokens
                );
            }
        }
        Action::Delete { name } => {
            if db.delete(&name)? {
                println!("deleted {name}");
            } else {
                anyhow::bail!("no account named {name}");
            }
        }
    }
    Ok(())
}
