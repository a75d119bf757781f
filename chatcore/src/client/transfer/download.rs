//! One download's `.part` file: the bytes written so far and their running
//! SHA-256, then the final check and the move to a name of its own. The
//! state machine decides when; this does the file work.

use std::fs::{self, File};
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

use super::Failure;
use super::files::{create_unique, hex};

/// A download's open `.part` file.
pub(crate) struct DownloadFile {
    /// The `.part` file, open for appending at its end.
    file: File,
    /// Its path, to delete or rename it.
    part: PathBuf,
    /// SHA-256 of every byte in it, so the final check needs no second read.
    hasher: Sha256,
    /// The directory the finished file goes to.
    dir: PathBuf,
    /// The sanitised name it is to be saved under.
    name: String,
    /// The offered SHA-256, which the content must match.
    sha256: Vec<u8>,
}

impl std::fmt::Debug for DownloadFile {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DownloadFile")
            .field("part", &self.part)
            .field("name", &self.name)
            .finish_non_exhaustive()
    }
}

impl DownloadFile {
    /// A download into `part` (open at its end, its bytes so far already
    /// in `hasher`), to be saved as `dir/name` if it hashes to `sha256`.
    pub(crate) fn new(
        file: File,
        part: PathBuf,
        hasher: Sha256,
        dir: PathBuf,
        name: String,
        sha256: Vec<u8>,
    ) -> Self {
        Self {
            file,
            part,
            hasher,
            dir,
            name,
            sha256,
        }
    }

    /// The `.part` file.
    pub(crate) fn part(&self) -> &Path {
        &self.part
    }

    /// Appends `data` to the file and to the hash.
    pub(crate) fn write(&mut self, data: &[u8]) -> io::Result<()> {
        self.file.write_all(data)?;
        self.hasher.update(data);
        Ok(())
    }

    /// Closes the file, keeping it for resuming.
    pub(crate) fn keep(self) {
        let _ = self.file.sync_data();
    }

    /// Closes the file and deletes it.
    pub(crate) fn discard(self) {
        drop(self.file);
        let _ = fs::remove_file(&self.part);
    }

    /// Checks the complete file against the offered SHA-256 and moves it to
    /// `dir/name` (or `name (1)`...; never overwriting). Returns where it
    /// is, or why not with the `.part` file kept, if it is (content that
    /// does not match is deleted: it is not the file offered).
    pub(crate) fn finish(mut self) -> Result<PathBuf, (Failure, Option<PathBuf>)> {
        let digest = std::mem::take(&mut self.hasher).finalize();
        if digest.as_slice() != self.sha256.as_slice() {
            let reason = Failure::HashMismatch {
                got: hex(&digest),
                offered: hex(&self.sha256),
            };
            self.discard();
            return Err((reason, None));
        }
        if let Err(source) = self.file.flush().and_then(|()| self.file.sync_all()) {
            let path = self.part.clone();
            return Err((Failure::Write { path, source }, Some(self.part)));
        }
        // Reserve the final name (never overwriting), then move onto it.
        let moved = create_unique(&self.dir, &self.name).and_then(|(_, path)| {
            fs::rename(&self.part, &path)
                .map(|()| path.clone())
                .inspect_err(|_| {
                    let _ = fs::remove_file(&path);
                })
        });
        moved.map_err(|source| {
            let path = self.part.clone();
            (Failure::Move { path, source }, Some(self.part))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn temp_dir(tag: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!(
            "chatcore-unit-dl-{tag}-{}-{:?}",
            std::process::id(),
            std::thread::current().id()
        ));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).expect("temp dir");
        dir
    }

    fn download(dir: &Path, content: &[u8]) -> DownloadFile {
        let (file, part) = create_unique(dir, "f.txt.part").expect("part");
        let sha = Sha256::digest(content).to_vec();
        DownloadFile::new(file, part, Sha256::new(), dir.into(), "f.txt".into(), sha)
    }

    #[test]
    fn a_matching_download_is_moved_next_to_an_existing_file_never_over_it() {
        let dir = temp_dir("ok");
        fs::write(dir.join("f.txt"), b"older").expect("write");
        let mut d = download(&dir, b"hello world");
        d.write(b"hello ").expect("write");
        d.write(b"world").expect("write");
        let part = d.part().to_owned();
        let path = d.finish().expect("saved");
        assert_eq!(path, dir.join("f (1).txt"));
        assert_eq!(fs::read(&path).expect("read"), b"hello world");
        assert_eq!(fs::read(dir.join("f.txt")).expect("read"), b"older");
        assert!(!part.exists());
        fs::remove_dir_all(&dir).expect("cleanup");
    }

    #[test]
    fn a_download_that_does_not_match_is_deleted() {
        let dir = temp_dir("bad");
        let mut d = download(&dir, b"expected");
        d.write(b"something else").expect("write");
        let part = d.part().to_owned();
        let (reason, kept) = d.finish().expect_err("mismatch");
        assert!(matches!(reason, Failure::HashMismatch { .. }), "{reason}");
        assert!(reason.to_string().starts_with("SHA-256 mismatch"));
        assert_eq!(kept, None);
        assert!(!part.exists());
        assert_eq!(fs::read_dir(&dir).expect("dir").count(), 0);
        fs::remove_dir_all(&dir).expect("cleanup");
    }

    #[test]
    fn a_kept_part_stays_and_a_discarded_one_goes() {
        let dir = temp_dir("keep");
        let mut d = download(&dir, b"x");
        d.write(b"half").expect("write");
        let part = d.part().to_owned();
        d.keep();
        assert_eq!(fs::read(&part).expect("kept"), b"half");
        let d = download(&dir, b"x");
        let other = d.part().to_owned();
        d.discard();
        assert!(!other.exists());
        assert!(part.exists());
        fs::remove_dir_all(&dir).expect("cleanup");
    }
}
