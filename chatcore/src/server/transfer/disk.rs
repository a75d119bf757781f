//! The disk worker: one thread that does every spool write, SHA-256 and
//! read, so the event loop never waits for the disk. Jobs arrive on a
//! channel in order; results go back on another, and the loop's `Waker`
//! tells it to look.
//!
//! Measured reason (docs/benchmarks.md): with the disk work on the loop
//! thread, copying uploads into the page cache took 64 % of the loop's time
//! and a cold-cache download stalled it for up to 19 ms, which every chat
//! client felt.

use std::collections::HashMap;
use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{Receiver, Sender, channel};
use std::thread::JoinHandle;

use bytes::{BufMut, Bytes, BytesMut};
use mio::Waker;
use sha2::{Digest, Sha256};

use crate::protocol::HEADER_LEN;
use crate::protocol::mpack::{put_map_len, put_str, put_u64_fixed};
use crate::protocol::transfer::MAX_CHUNK;

/// Extension of spool files, so cleaning touches nothing else.
const SPOOL_EXT: &str = "chatspool";
/// Prefix of a server's own spool subdirectory (`run-PID-N`, N counting
/// the servers started in that process).
const RUN_PREFIX: &str = "run-";
/// The lock file in a run directory: locked (`flock`) while its process
/// lives, so a later start can tell a killed server's files from a running
/// one's. The kernel drops the lock when the process dies, however it dies.
const LOCK_FILE: &str = "lock";

/// Work for the disk thread. The disk thread is the only one that creates,
/// writes, reads and deletes spool files: the loop never touches the disk.
#[derive(Debug)]
pub enum Job {
    /// Create upload `id`'s spool file; its content must hash to `sha256`.
    Begin {
        /// The transfer.
        id: u64,
        /// Declared hash.
        sha256: [u8; 32],
    },
    /// Append to upload `id`; `last` if this completes the declared size.
    Write {
        /// The transfer.
        id: u64,
        /// The bytes.
        data: Vec<u8>,
        /// The final chunk: verify the hash after it.
        last: bool,
    },
    /// Transfer `id` is gone (aborted, withdrawn, expired): delete its spool
    /// file, at once or when the last download reading it closes. Jobs run
    /// in order, so this always comes after the file's creation.
    Remove {
        /// The transfer.
        id: u64,
    },
    /// Open a download: the spool file of a transfer, from `offset`.
    Open {
        /// The download's token.
        token: u64,
        /// The transfer (written into each frame).
        transfer: u64,
        /// First byte.
        offset: u64,
        /// File size.
        size: u64,
    },
    /// Read the next chunk of download `token` into a `file_data` frame.
    Read {
        /// The download's token.
        token: u64,
    },
    /// Close download `token`.
    Close {
        /// The download's token.
        token: u64,
    },
}

/// What the disk thread did.
#[derive(Debug)]
pub enum Done {
    /// `bytes` of upload `id` are stored.
    Stored {
        /// The transfer.
        id: u64,
        /// Bytes written by this job.
        bytes: usize,
    },
    /// Upload `id` is complete; whether its content matched the hash.
    Finished {
        /// The transfer.
        id: u64,
        /// Hash matched.
        ok: bool,
    },
    /// Upload `id` could not be written.
    WriteFailed {
        /// The transfer.
        id: u64,
        /// What the OS said.
        error: String,
    },
    /// The next frame of download `token`; `last` after the final byte.
    Data {
        /// The download's token.
        token: u64,
        /// A complete `file_data` frame.
        frame: Bytes,
        /// No more data after this one.
        last: bool,
    },
    /// Download `token` could not be read.
    ReadFailed {
        /// The download's token.
        token: u64,
        /// What the OS said.
        error: String,
    },
}

/// This server's spool: a directory `run-PID-N` of its own inside the
/// configured spool directory, holding a locked `lock` file.
///
/// Why a directory per process: a server started on port 0 and killed
/// cannot be found again by its port, and two servers sharing a spool
/// directory must not delete each other's files. At start, every `run-*`
/// directory whose lock can be taken belongs to a process that is gone, and
/// is emptied and removed.
#[derive(Debug)]
pub struct Spool {
    /// The configured (or default) spool directory.
    base: PathBuf,
    /// This process's own subdirectory, where the files are.
    dir: PathBuf,
    /// Held (and locked) for the life of the spool.
    lock: File,
}

impl Spool {
    /// Cleans up after dead servers in `base` and creates this process's
    /// own run directory there.
    pub fn open(base: &Path) -> io::Result<Self> {
        // Another server sharing `base` removes it when it shuts down and
        // leaves it empty; if that happens between our steps, a step finds
        // nothing (`NotFound`), or `create_dir_all` sees the directory
        // vanish under it (`AlreadyExists`), and we start again, a few times.
        let mut attempt = 0;
        loop {
            match Self::try_open(base) {
                Err(e)
                    if matches!(
                        e.kind(),
                        io::ErrorKind::NotFound | io::ErrorKind::AlreadyExists
                    ) && attempt < 20 =>
                {
                    attempt += 1;
                }
                done => return done,
            }
        }
    }

    /// One attempt of [`Spool::open`].
    fn try_open(base: &Path) -> io::Result<Self> {
        std::fs::create_dir_all(base)?;
        for entry in std::fs::read_dir(base)? {
            let entry = entry?;
            let path = entry.path();
            let name = entry.file_name();
            let name = name.to_string_lossy();
            if path.extension().is_some_and(|e| e == SPOOL_EXT) {
                // Files of the layout before run directories.
                let _ = std::fs::remove_file(&path);
            } else if entry.file_type()?.is_dir() {
                // A `.new-*` directory may be a server starting right now,
                // between creating its lock file and locking it: trying
                // that lock would take it from under the server (seen in
                // the race test below). It holds nothing but the lock file,
                // so only one left behind for a minute is cleaned.
                let abandoned = name.starts_with(".new-")
                    && entry
                        .metadata()
                        .and_then(|m| m.modified())
                        .is_ok_and(|t| t.elapsed().is_ok_and(|age| age.as_secs() > 60));
                let stale =
                    (name.starts_with(RUN_PREFIX) || abandoned) && !locked_by_a_live_process(&path);
                if stale {
                    remove_run_dir(&path);
                }
            }
        }
        // Made under a temporary name and renamed once locked, so that no
        // other process ever sees a `run-*` directory without its lock held.
        // Several servers may run in one process (embedders, tests): each
        // gets its own number.
        static SERVERS: AtomicU64 = AtomicU64::new(0);
        let pid = std::process::id();
        let n = SERVERS.fetch_add(1, Ordering::Relaxed);
        let fresh = base.join(format!(".new-{pid}-{n}"));
        let dir = base.join(format!("{RUN_PREFIX}{pid}-{n}"));
        std::fs::create_dir(&fresh)?;
        let mut lock = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(true)
            .open(fresh.join(LOCK_FILE))?;
        rustix::fs::flock(&lock, rustix::fs::FlockOperation::NonBlockingLockExclusive)?;
        // For an operator looking at the directory.
        writeln!(lock, "{pid}")?;
        std::fs::rename(&fresh, &dir)?;
        Ok(Self {
            base: base.to_path_buf(),
            dir,
            lock,
        })
    }

    /// The spool file of transfer `id`.
    fn path(&self, id: u64) -> PathBuf {
        self.dir.join(format!("{id}.{SPOOL_EXT}"))
    }

    /// Deletes the run directory and everything of ours in it, then the
    /// spool directory itself if nothing else is left there.
    fn close(self) {
        remove_run_dir(&self.dir);
        drop(self.lock);
        let _ = std::fs::remove_dir(&self.base);
    }
}

/// Whether another process holds the lock of run directory `dir`.
fn locked_by_a_live_process(dir: &Path) -> bool {
    let Ok(file) = File::open(dir.join(LOCK_FILE)) else {
        return false; // no lock file: nobody can hold it
    };
    match rustix::fs::flock(&file, rustix::fs::FlockOperation::NonBlockingLockExclusive) {
        Ok(()) => false, // released when `file` closes
        Err(e) => e == rustix::io::Errno::WOULDBLOCK,
    }
}

/// Removes our files from a run directory, then the directory if it is
/// empty. Nothing else is touched (a mistaken `spool_dir` loses nothing).
fn remove_run_dir(dir: &Path) {
    if let Ok(entries) = std::fs::read_dir(dir) {
        for entry in entries.flatten() {
            let path = entry.path();
            if path.extension().is_some_and(|e| e == SPOOL_EXT) || entry.file_name() == LOCK_FILE {
                let _ = std::fs::remove_file(&path);
            }
        }
    }
    let _ = std::fs::remove_dir(dir);
}

/// The loop's side of the disk thread.
#[derive(Debug)]
pub struct DiskWorker {
    jobs: Option<Sender<Job>>,
    done: Receiver<Done>,
    thread: Option<JoinHandle<()>>,
}

/// An upload the disk thread is writing: its running hash (the file itself
/// is opened only while a chunk is written, see [`Handles`]).
struct Upload {
    hasher: Sha256,
    sha256: [u8; 32],
}

/// A download being read.
struct Reader {
    transfer: u64,
    offset: u64,
    size: u64,
}

/// A spool file this thread created and has not deleted yet.
#[derive(Default)]
struct SpoolFile {
    /// Downloads reading it: it is deleted only once they are closed.
    readers: usize,
    /// Its transfer is gone: delete it when `readers` drops to 0.
    removed: bool,
}

/// What an open descriptor serves.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Use {
    Upload(u64),
    Download(u64),
}

/// Open spool files, at most `cap` of them: an idle upload or download
/// holds no descriptor for long, whatever their number. When full, the
/// least recently used one is closed (it is reopened by path when needed:
/// files are deleted only once nothing uses them).
struct Handles {
    cap: usize,
    open: HashMap<Use, (File, u64)>,
    clock: u64,
}

impl Handles {
    fn get(&mut self, what: Use, open: impl FnOnce() -> io::Result<File>) -> io::Result<&File> {
        self.clock += 1;
        let clock = self.clock;
        if !self.open.contains_key(&what) {
            if self.open.len() >= self.cap
                && let Some(oldest) = self
                    .open
                    .iter()
                    .min_by_key(|(_, (_, t))| *t)
                    .map(|(k, _)| *k)
            {
                self.open.remove(&oldest);
            }
            self.open.insert(what, (open()?, clock));
        }
        match self.open.get_mut(&what) {
            Some(entry) => {
                entry.1 = clock;
                Ok(&entry.0)
            }
            None => Err(io::Error::other("spool file not open")),
        }
    }

    fn close(&mut self, what: Use) {
        self.open.remove(&what);
    }
}

impl DiskWorker {
    /// Starts the thread, which owns `spool` from now on (and deletes it
    /// when the worker is dropped); it keeps at most `max_open` spool files
    /// open and wakes the loop through `waker` after each job.
    pub fn start(waker: Arc<Waker>, spool: Spool, max_open: usize) -> io::Result<Self> {
        let (jobs, rx) = channel::<Job>();
        let (tx, done) = channel::<Done>();
        let thread = std::thread::Builder::new()
            .name("chatcore-disk".into())
            .spawn(move || run(rx, tx, waker, spool, max_open.max(1)))?;
        Ok(Self {
            jobs: Some(jobs),
            done,
            thread: Some(thread),
        })
    }

    /// Hands a job over (never blocks).
    pub fn submit(&self, job: Job) {
        if let Some(jobs) = &self.jobs {
            let _ = jobs.send(job);
        }
    }

    /// The next result, if one is ready.
    pub fn poll(&self) -> Option<Done> {
        self.done.try_recv().ok()
    }
}

impl Drop for DiskWorker {
    /// Ends the thread after the jobs already submitted; it then deletes
    /// every spool file and the run directory.
    fn drop(&mut self) {
        self.jobs = None; // ends the thread's loop
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// Niceness of the disk thread: when the two compete for a core, the event
/// loop wins. Without it the loop was preempted for 20–70 ms at a time during
/// a 1 GiB upload (the disk thread copying into the page cache at 100 %),
/// and every chat client felt those stalls.
const DISK_NICE: i32 = 10;

/// The disk thread's state: everything it owns.
struct Disk {
    spool: Spool,
    handles: Handles,
    uploads: HashMap<u64, Upload>,
    readers: HashMap<u64, Reader>,
    files: HashMap<u64, SpoolFile>,
}

fn run(rx: Receiver<Job>, tx: Sender<Done>, waker: Arc<Waker>, spool: Spool, max_open: usize) {
    // Best effort: a failure only means equal priority.
    let _ = rustix::process::setpriority_process(Some(rustix::thread::gettid()), DISK_NICE);
    let mut disk = Disk {
        spool,
        handles: Handles {
            cap: max_open,
            open: HashMap::new(),
            clock: 0,
        },
        uploads: HashMap::new(),
        readers: HashMap::new(),
        files: HashMap::new(),
    };
    while let Ok(job) = rx.recv() {
        if let Some(done) = disk.job(job, &tx) {
            let _ = tx.send(done);
        }
        let _ = waker.wake();
    }
    // The server stopped (or its loop failed): nothing of ours stays.
    disk.handles.open.clear();
    disk.spool.close();
}

impl Disk {
    fn job(&mut self, job: Job, tx: &Sender<Done>) -> Option<Done> {
        match job {
            Job::Begin { id, sha256 } => {
                self.files.insert(id, SpoolFile::default());
                let path = self.spool.path(id);
                match self.handles.get(Use::Upload(id), || File::create(&path)) {
                    Ok(_) => {
                        self.uploads.insert(
                            id,
                            Upload {
                                hasher: Sha256::new(),
                                sha256,
                            },
                        );
                        None
                    }
                    Err(e) => Some(Done::WriteFailed {
                        id,
                        error: e.to_string(),
                    }),
                }
            }
            Job::Write { id, data, last } => {
                if !self.uploads.contains_key(&id) {
                    return None; // failed or removed meanwhile
                }
                let path = self.spool.path(id);
                let written = self
                    .handles
                    .get(Use::Upload(id), || {
                        OpenOptions::new().append(true).open(&path)
                    })
                    .and_then(|mut f| f.write_all(&data));
                if let Err(e) = written {
                    self.uploads.remove(&id);
                    self.handles.close(Use::Upload(id));
                    return Some(Done::WriteFailed {
                        id,
                        error: e.to_string(),
                    });
                }
                let u = self.uploads.get_mut(&id)?;
                u.hasher.update(&data);
                let _ = tx.send(Done::Stored {
                    id,
                    bytes: data.len(),
                });
                if !last {
                    return None;
                }
                self.handles.close(Use::Upload(id));
                let u = self.uploads.remove(&id)?;
                let digest: [u8; 32] = u.hasher.finalize().into();
                Some(Done::Finished {
                    id,
                    ok: digest == u.sha256,
                })
            }
            Job::Remove { id } => {
                self.uploads.remove(&id);
                self.handles.close(Use::Upload(id));
                match self.files.get_mut(&id) {
                    Some(f) if f.readers > 0 => f.removed = true,
                    Some(_) => {
                        self.files.remove(&id);
                        let _ = std::fs::remove_file(self.spool.path(id));
                    }
                    None => {}
                }
                None
            }
            Job::Open {
                token,
                transfer,
                offset,
                size,
            } => {
                let exists = self
                    .files
                    .get(&transfer)
                    .is_some_and(|f| !f.removed)
                    .then(|| self.spool.path(transfer))
                    .filter(|p| p.is_file());
                let Some(_) = exists else {
                    return Some(Done::ReadFailed {
                        token,
                        error: "the spool file is gone".into(),
                    });
                };
                if let Some(f) = self.files.get_mut(&transfer) {
                    f.readers += 1;
                }
                self.readers.insert(
                    token,
                    Reader {
                        transfer,
                        offset,
                        size,
                    },
                );
                None
            }
            Job::Read { token } => {
                let r = self.readers.get_mut(&token)?;
                let path = self.spool.path(r.transfer);
                let read = self
                    .handles
                    .get(Use::Download(token), || File::open(&path))
                    .and_then(|f| next_frame(f, r));
                match read {
                    Ok(frame) => {
                        let last = r.offset >= r.size;
                        if last {
                            // Nothing more to read: give the descriptor back now.
                            self.handles.close(Use::Download(token));
                        }
                        Some(Done::Data { token, frame, last })
                    }
                    Err(e) => {
                        self.close_reader(token);
                        Some(Done::ReadFailed {
                            token,
                            error: e.to_string(),
                        })
                    }
                }
            }
            Job::Close { token } => {
                self.close_reader(token);
                None
            }
        }
    }

    /// Forgets download `token`; deletes its file if its transfer is gone
    /// and this was the last reader.
    fn close_reader(&mut self, token: u64) {
        self.handles.close(Use::Download(token));
        let Some(r) = self.readers.remove(&token) else {
            return;
        };
        if let Some(f) = self.files.get_mut(&r.transfer) {
            f.readers = f.readers.saturating_sub(1);
            if f.readers == 0 && f.removed {
                self.files.remove(&r.transfer);
                let _ = std::fs::remove_file(self.spool.path(r.transfer));
            }
        }
    }
}

/// Reads the next chunk straight into a `file_data` frame buffer (one copy
/// from the page cache; the frame is then shared with the socket queue).
fn next_frame(file: &File, r: &mut Reader) -> io::Result<Bytes> {
    let want = (r.size - r.offset).min(u64::from(MAX_CHUNK)) as usize;
    let mut head = Vec::with_capacity(64);
    // map of 4: type, transfer, offset, data
    put_map_len(&mut head, 4);
    put_str(&mut head, "type");
    put_str(&mut head, "file_data");
    put_str(&mut head, "transfer");
    put_u64_fixed(&mut head, r.transfer);
    put_str(&mut head, "offset");
    put_u64_fixed(&mut head, r.offset);
    put_str(&mut head, "data");
    head.push(0xc6); // bin32
    head.extend_from_slice(&(want as u32).to_be_bytes());
    let mut frame = BytesMut::with_capacity(HEADER_LEN + head.len() + want);
    frame.put_u32((head.len() + want) as u32);
    frame.extend_from_slice(&head);
    let start = frame.len();
    frame.resize(start + want, 0);
    file.read_exact_at(&mut frame[start..], r.offset)?;
    r.offset += want as u64;
    Ok(frame.freeze())
}

#[cfg(test)]
mod tests {
    use super::Spool;

    /// Servers sharing one spool directory start and stop at the same time
    /// (tests, several daemons): the last one to stop removes the shared
    /// directory, possibly between another's steps, and that one must still
    /// get its run directory.
    #[test]
    fn servers_starting_while_others_stop_all_get_their_run_directory() {
        let base = std::env::temp_dir().join(format!("chatcore-spool-race-{}", std::process::id()));
        let threads: Vec<_> = (0..6)
            .map(|_| {
                let base = base.clone();
                std::thread::spawn(move || {
                    for _ in 0..100 {
                        let spool = Spool::open(&base).expect("run directory");
                        assert!(spool.dir.is_dir());
                        spool.close();
                    }
                })
            })
            .collect();
        for t in threads {
            t.join().expect("no thread failed");
        }
        assert!(!base.exists(), "the last one out removed the directory");
    }
}
