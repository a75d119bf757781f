//! `chatserver man [DIR]` (hidden): writes the man page `chatserver.1`,
//! generated from the clap definition (so it lists every flag and
//! environment variable of this build), to DIR, or to stdout. The Debian
//! package installs it (scripts/build-deb.sh).

use std::path::PathBuf;

use anyhow::Context;

/// Writes the page; `args` start with the program name.
pub fn run(args: Vec<String>) -> anyhow::Result<()> {
    let cmd = crate::cli::command();
    let man = clap_mangen::Man::new(cmd);
    let mut page = Vec::new();
    man.render(&mut page)
        .context("cannot render the man page")?;
    match args.get(2) {
        Some(dir) => {
            let path = PathBuf::from(dir).join("chatserver.1");
            std::fs::write(&path, page)
                .with_context(|| format!("cannot write {}", path.display()))?;
            println!("{}", path.display());
        }
        None => {
            use std::io::Write;
            std::io::stdout().write_all(&page)?;
        }
    }
    Ok(())
}
