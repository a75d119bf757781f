//! The self-signed certificate a server makes for itself on first start:
//! `DATA_DIR/tls/cert.pem` and `DATA_DIR/tls/key.pem` (key mode 0600,
//! directories 0700), reused on every later start so its fingerprint stays
//! what users remembered.

use std::fs::{DirBuilder, OpenOptions};
use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use super::ServerTlsError;

/// Subdirectory of the data directory holding the pair.
pub const TLS_DIR: &str = "tls";
/// The certificate's file name in [`TLS_DIR`].
pub const CERT_FILE: &str = "cert.pem";
/// The private key's file name in [`TLS_DIR`] (mode 0600).
pub const KEY_FILE: &str = "key.pem";

/// The paths of the pair in `data_dir`, created first if either is absent
/// (a half-written pair from an interrupted first start is replaced).
pub(super) fn load_or_create(data_dir: &Path) -> Result<(PathBuf, PathBuf), ServerTlsError> {
    let dir = data_dir.join(TLS_DIR);
    let cert = dir.join(CERT_FILE);
    let key = dir.join(KEY_FILE);
    if cert.is_file() && key.is_file() {
        return Ok((cert, key));
    }
    let write_err = |path: &Path| {
        let path = path.to_path_buf();
        move |source| ServerTlsError::Write { path, source }
    };
    DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(&dir)
        .map_err(write_err(&dir))?;
    let (cert_pem, key_pem) = generate()?;
    // The key first: a pair is only used when both exist, and the
    // certificate is written last.
    write_atomically(&key, key_pem.as_bytes(), 0o600).map_err(write_err(&key))?;
    write_atomically(&cert, cert_pem.as_bytes(), 0o644).map_err(write_err(&cert))?;
    tracing::info!("created a self-signed TLS certificate in {}", dir.display());
    Ok((cert, key))
}

/// A new ECDSA P-256 key and a certificate for it naming localhost,
/// 127.0.0.1, ::1 and this machine's host name.
fn generate() -> Result<(String, String), ServerTlsError> {
    let mut names = vec![
        "localhost".to_owned(),
        "127.0.0.1".to_owned(),
        "::1".to_owned(),
    ];
    if let Some(host) = hostname()
        && !names.contains(&host)
    {
        names.push(host);
    }
    let mut params = match rcgen::CertificateParams::new(names.clone()) {
        Ok(params) => params,
        // A host name that is no valid DNS name is left out.
        Err(_) => {
            rcgen::CertificateParams::new(names[..3].to_vec()).map_err(ServerTlsError::Generate)?
        }
    };
    params
        .distinguished_name
        .push(rcgen::DnType::CommonName, "chatserver (self-signed)");
    let key = rcgen::KeyPair::generate().map_err(ServerTlsError::Generate)?;
    let cert = params.self_signed(&key).map_err(ServerTlsError::Generate)?;
    Ok((cert.pem(), key.serialize_pem()))
}

/// The machine's host name, if the kernel tells it and it looks like one.
fn hostname() -> Option<String> {
    let text = std::fs::read_to_string("/proc/sys/kernel/hostname").ok()?;
    let name = text.trim().to_ascii_lowercase();
    let ok = !name.is_empty()
        && name.len() <= 253
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.');
    ok.then_some(name)
}

/// Writes `data` to a new temporary file with `mode` beside `path`, then
/// renames it over `path`, so a reader never sees a partial file.
fn write_atomically(path: &Path, data: &[u8], mode: u32) -> std::io::Result<()> {
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(format!(".new-{}", std::process::id()));
    let tmp = PathBuf::from(tmp);
    let _ = std::fs::remove_file(&tmp);
    let result = (|| {
        let mut file = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(mode)
            .open(&tmp)?;
        file.write_all(data)?;
        file.sync_all()?;
        std::fs::rename(&tmp, path)
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    fn scratch(name: &str) -> PathBuf {
        let dir =
            std::env::temp_dir().join(format!("chatcore-selfsigned-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        dir
    }

    #[test]
    fn the_pair_is_created_private_and_then_reused() {
        let data = scratch("reuse");
        let first = crate::server::ServerTls::self_signed(&data).expect("created");
        let dir = data.join(TLS_DIR);
        let mode = |p: &Path| std::fs::metadata(p).expect("exists").permissions().mode() & 0o777;
        assert_eq!(mode(&dir.join(KEY_FILE)), 0o600);
        assert_eq!(mode(&dir), 0o700);
        let second = crate::server::ServerTls::self_signed(&data).expect("reused");
        assert_eq!(first.fingerprint(), second.fingerprint());
        std::fs::remove_dir_all(&data).expect("clean up");
    }

    #[test]
    fn a_half_written_pair_is_replaced() {
        let data = scratch("half");
        let dir = data.join(TLS_DIR);
        std::fs::create_dir_all(&dir).expect("dir");
        std::fs::write(dir.join(KEY_FILE), b"left over").expect("key");
        crate::server::ServerTls::self_signed(&data).expect("a new pair");
        std::fs::remove_dir_all(&data).expect("clean up");
    }

    #[test]
    fn a_key_that_does_not_match_or_garbage_is_a_clear_error() {
        let a = generate().expect("pair a");
        let b = generate().expect("pair b");
        let e = crate::server::ServerTls::from_pem(a.0.as_bytes(), b.1.as_bytes())
            .expect_err("mismatched key");
        assert!(matches!(e, ServerTlsError::Rustls(_)), "{e:?}");
        let e = crate::server::ServerTls::from_pem(b"not pem", a.1.as_bytes())
            .expect_err("no certificate");
        assert!(matches!(e, ServerTlsError::NoCertificate(_)), "{e:?}");
    }
}
