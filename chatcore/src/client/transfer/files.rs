//! Local files: the name a download is saved under, a free path for it,
//! and hashing a file. The naming rules themselves are in
//! [`crate::protocol::file_name`], shared with the server.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Read};
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

use super::MAX_FILE_NAME;
use crate::client::ClientError;
use crate::protocol::file_name::{fit, sanitize, split_ext};

/// Bytes read at a time while hashing a file.
const HASH_BUF: usize = 256 * 1024;

/// `name` made safe to use as one file name in a directory of our choosing.
///
/// - path separators (`/`, `\`), control characters, the characters Windows
///   forbids (`<>:"|?*`) and invisible bidirectional-override characters
///   become `_`;
/// - surrounding whitespace, leading dots (which hide a file, and make `.`
///   and `..`) and trailing dots and spaces (which Windows drops) are removed;
/// - a name with nothing left is `file`;
/// - a Windows device name (`con`, `nul`, `com1`, `lpt9.txt`, `conin$`...)
///   gets a `_` after its stem: `con_`, `lpt9_.txt`;
/// - the result is at most [`MAX_FILE_NAME`] bytes, cut at a character
///   boundary, keeping a short extension.
///
/// The rules are those of [`crate::protocol::file_name`] (docs/protocol.md
/// 17.9), where they are tested; a sanitised name always passes the
/// server's check.
///
/// ```
/// use chatcore::client::sanitize_file_name;
/// assert_eq!(sanitize_file_name("../../etc/passwd"), "_.._etc_passwd");
/// assert_eq!(sanitize_file_name("con.txt"), "con_.txt");
/// assert_eq!(sanitize_file_name(""), "file");
/// ```
pub fn sanitize_file_name(name: &str) -> String {
    sanitize(name, MAX_FILE_NAME)
}

/// A path in `dir` for `name` where nothing exists yet: `dir/x.txt`, else
/// `dir/x (1).txt`, `dir/x (2).txt`... Every candidate stays within
/// [`MAX_FILE_NAME`] bytes. `name` should already be sanitised.
///
/// Something may be created at the path between this call and its use;
/// code that must never overwrite opens it with `create_new`.
pub fn unique_path(dir: &Path, name: &str) -> PathBuf {
    let (stem, ext) = split_ext(name);
    let mut n: u64 = 0;
    loop {
        let candidate = if n == 0 {
            fit(stem, ext, MAX_FILE_NAME)
        } else {
            let suffix = format!(" ({n}){ext}");
            fit(stem, &suffix, MAX_FILE_NAME)
        };
        let path = dir.join(candidate);
        // `symlink_metadata`: a dangling symlink counts as taken too.
        if fs::symlink_metadata(&path).is_err() {
            return path;
        }
        n += 1;
    }
}

/// Creates a new file in `dir` named `name` or `name (n)`; never opens an
/// existing one.
pub(crate) fn create_unique(dir: &Path, name: &str) -> io::Result<(File, PathBuf)> {
    loop {
        let path = unique_path(dir, name);
        match OpenOptions::new().write(true).create_new(true).open(&path) {
            Ok(file) => return Ok((file, path)),
            // Taken since `unique_path` looked: try the next name.
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {}
            Err(e) => return Err(e),
        }
    }
}

/// SHA-256 of everything `reader` yields, and how many bytes that was.
pub(crate) fn hash_reader(reader: &mut impl Read, hasher: &mut Sha256) -> io::Result<u64> {
    let mut buf = vec![0u8; HASH_BUF];
    let mut total = 0u64;
    loop {
        match reader.read(&mut buf) {
            Ok(0) => return Ok(total),
            Ok(n) => {
                hasher.update(&buf[..n]);
                total += n as u64;
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
}

/// Hex of a hash, for messages.
pub(crate) fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// A [`ClientError::File`] about `path`.
pub(crate) fn file_error(path: &Path, source: io::Error) -> ClientError {
    ClientError::File {
        path: path.to_owned(),
        source,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn temp_dir(tag: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!(
            "chatcore-unit-{tag}-{}-{:?}",
            std::process::id(),
            std::thread::current().id()
        ));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).expect("temp dir");
        dir
    }

    #[test]
    fn unique_paths_never_reuse_a_name() {
        let dir = temp_dir("unique");
        assert_eq!(unique_path(&dir, "x.txt"), dir.join("x.txt"));
        fs::write(dir.join("x.txt"), b"1").expect("write");
        assert_eq!(unique_path(&dir, "x.txt"), dir.join("x (1).txt"));
        fs::write(dir.join("x (1).txt"), b"2").expect("write");
        assert_eq!(unique_path(&dir, "x.txt"), dir.join("x (2).txt"));
        fs::write(dir.join("noext"), b"3").expect("write");
        assert_eq!(unique_path(&dir, "noext"), dir.join("noext (1)"));
        // A name at the length limit still gets its number within it.
        let long = "z".repeat(MAX_FILE_NAME - 4) + ".bin";
        fs::write(dir.join(&long), b"4").expect("write");
        let next = unique_path(&dir, &long);
        let next_name = next.file_name().and_then(|n| n.to_str()).expect("name");
        assert!(next_name.len() <= MAX_FILE_NAME, "{}", next_name.len());
        assert!(next_name.ends_with(" (1).bin"), "{next_name}");
        // create_unique never opens an existing file.
        let (_, p) = create_unique(&dir, "x.txt").expect("create");
        assert_eq!(p, dir.join("x (2).txt"));
        assert_eq!(fs::read(dir.join("x.txt")).expect("read"), b"1");
        fs::remove_dir_all(&dir).expect("cleanup");
    }

    #[test]
    fn hashing_a_reader_counts_and_hashes_every_byte() {
        let data = vec![7u8; HASH_BUF * 2 + 5];
        let mut hasher = Sha256::new();
        let n = hash_reader(&mut data.as_slice(), &mut hasher).expect("hash");
        assert_eq!(n, data.len() as u64);
        assert_eq!(hasher.finalize().to_vec(), Sha256::digest(&data).to_vec());
        assert_eq!(hex(&[0, 0xab, 0x10]), "00ab10");
    }
}
