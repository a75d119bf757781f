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
use std::fs::File;
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::mpsc::{Receiver, Sender, channel};
use std::thread::JoinHandle;

use bytes::{BufMut, Bytes, BytesMut};
use mio::Waker;
use sha2::{Digest, Sha256};

use crate::protocol::HEADER_LEN;
use crate::protocol::mpack::{put_map_len, put_str, put_u64_fixed};
use crate::protocol::transfer::MAX_CHUNK;

/// Work for the disk thread.
#[derive(Debug)]
pub enum Job {
    /// Create upload `id`'s spool file; its content must hash to `sha256`.
    Begin {
        /// The transfer.
        id: u64,
        /// Spool file to create.
        path: PathBuf,
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
    /// Forget upload `id` (aborted) and delete its spool file. The file is
    /// created by this thread, so only this thread can be sure to delete it
    /// after its creation: the loop's own delete may come first.
    Abort {
        /// The transfer.
        id: u64,
    },
    /// Open a download: the spool file of a transfer, from `offset`.
    Open {
        /// The download's token.
        token: u64,
        /// The transfer (written into each frame).
        transfer: u64,
        /// Spool file.
        path: PathBuf,
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

/// The loop's side of the disk thread.
#[derive(Debug)]
pub struct DiskWorker {
    jobs: Option<Sender<Job>>,
    done: Receiver<Done>,
    thread: Option<JoinHandle<()>>,
}

struct Upload {
    file: File,
    path: PathBuf,
    hasher: Sha256,
    sha256: [u8; 32],
}

struct Reader {
    file: File,
    transfer: u64,
    offset: u64,
    size: u64,
}

impl DiskWorker {
    /// Starts the thread; it wakes the loop through `waker` after each job.
    pub fn start(waker: Arc<Waker>) -> std::io::Result<Self> {
        let (jobs, rx) = channel::<Job>();
        let (tx, done) = channel::<Done>();
        let thread = std::thread::Builder::new()
            .name("chatcore-disk".into())
            .spawn(move || run(rx, tx, waker))?;
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

fn run(rx: Receiver<Job>, tx: Sender<Done>, waker: Arc<Waker>) {
    // Best effort: a failure only means equal priority.
    let _ = rustix::process::setpriority_process(Some(rustix::thread::gettid()), DISK_NICE);
    let mut uploads: HashMap<u64, Upload> = HashMap::new();
    let mut readers: HashMap<u64, Reader> = HashMap::new();
    while let Ok(job) = rx.recv() {
        let done = match job {
            Job::Begin { id, path, sha256 } => match File::create(&path) {
                Ok(file) => {
                    uploads.insert(
                        id,
                        Upload {
                            file,
                            path,
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
            },
            Job::Write { id, data, last } => match uploads.get_mut(&id) {
                None => None, // aborted meanwhile
                Some(u) => match u.file.write_all(&data) {
                    Err(e) => {
                        uploads.remove(&id);
                        Some(Done::WriteFailed {
                            id,
                            error: e.to_string(),
                        })
                    }
                    Ok(()) => {
                        u.hasher.update(&data);
                        let _ = tx.send(Done::Stored {
                            id,
                            bytes: data.len(),
                        });
                        if last {
                            let u = uploads.remove(&id);
                            u.map(|u| {
                                let digest: [u8; 32] = u.hasher.finalize().into();
                                Done::Finished {
                                    id,
                                    ok: digest == u.sha256,
                                }
                            })
                        } else {
                            None
                        }
                    }
                },
            },
            Job::Abort { id } => {
                if let Some(u) = uploads.remove(&id) {
                    let _ = std::fs::remove_file(&u.path);
                }
                None
            }
            Job::Open {
                token,
                transfer,
                path,
                offset,
                size,
            } => match File::open(&path).and_then(|mut f| {
                f.seek(SeekFrom::Start(offset))?;
                Ok(f)
            }) {
                Ok(file) => {
                    readers.insert(
                        token,
                        Reader {
                            file,
                            transfer,
                            offset,
                            size,
                        },
                    );
                    None
                }
                Err(e) => Some(Done::ReadFailed {
                    token,
                    error: e.to_string(),
                }),
            },
            Job::Read { token } => match readers.get_mut(&token) {
                None => None,
                Some(r) => match next_frame(r) {
                    Ok(frame) => Some(Done::Data {
                        token,
                        frame,
                        last: r.offset >= r.size,
                    }),
                    Err(e) => {
                        readers.remove(&token);
                        Some(Done::ReadFailed {
                            token,
                            error: e.to_string(),
                        })
                    }
                },
            },
            Job::Close { token } => {
                readers.remove(&token);
                None
            }
        };
        if let Some(done) = done {
            let _ = tx.send(done);
        }
        let _ = waker.wake();
    }
}

/// Reads the next chunk straight into a `file_data` frame buffer (one copy
/// from the page cache; the frame is then shared with the socket queue).
fn next_frame(r: &mut Reader) -> std::io::Result<Bytes> {
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
    r.file.read_exact(&mut frame[start..])?;
    r.offset += want as u64;
    Ok(frame.freeze())
}
