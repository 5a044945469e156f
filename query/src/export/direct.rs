//! Exports written with direct I/O: the bytes go from lastseen's buffers to the disk without
//! passing through the kernel's page cache.
//!
//! An export is synced to disk before it is renamed into place (`write_atomically`), so the
//! page cache adds work and nothing else: every byte is copied into newly allocated cache pages,
//! then written back by the syncs, and a large export pushes other files' pages out of the
//! cache. With direct I/O a thread of its own hands each full chunk of [`CHUNK`] bytes to the
//! disk while the encoder fills the next one, and the final `fsync` finds no dirty pages.
//!
//! Direct I/O needs each write's memory address, file offset and length aligned to the
//! device's logical block size: chunks are whole multiples of [`ALIGN`] bytes, in memory
//! aligned to it, written back to back from offset 0. The tail (under [`ALIGN`] bytes past the
//! last whole block) goes through the export's ordinary descriptor. Where the file system has
//! no direct I/O, [`open`] returns `None` and the export is written the buffered way.

use std::fs::File;
use std::io::{self, Write};
use std::os::unix::fs::FileExt;
use std::sync::mpsc::{Receiver, SyncSender, sync_channel};
use std::thread::JoinHandle;

/// Bytes per direct write.
pub(super) const CHUNK: usize = 8 * 1024 * 1024;
/// Alignment of every direct write's address, offset and length: the largest logical block
/// size of common disks (most are 512 bytes).
const ALIGN: usize = 4096;
/// Chunks at most: one being filled, one being written, one waiting.
const CHUNKS: usize = 3;

/// A second descriptor of the regular file `file` (the export's new, empty temporary file), for
/// direct I/O; `None` where that cannot be had (not Linux, not a regular file, a file system
/// without direct I/O such as an older tmpfs, or no `/proc`).
#[cfg(target_os = "linux")]
pub(super) fn open(file: &File) -> Option<File> {
    use std::os::fd::AsRawFd;
    use std::os::unix::fs::OpenOptionsExt;
    if !file.metadata().is_ok_and(|m| m.is_file() && m.len() == 0) {
        return None;
    }
    // Opened through /proc: the same inode, without knowing its name, and a file description
    // of its own whose flags do not change `file`'s.
    std::fs::OpenOptions::new()
        .write(true)
        .custom_flags(libc::O_DIRECT)
        .open(format!("/proc/self/fd/{}", file.as_raw_fd()))
        .ok()
}

#[cfg(not(target_os = "linux"))]
pub(super) fn open(_file: &File) -> Option<File> {
    None
}

/// [`CHUNK`] bytes of memory aligned to [`ALIGN`], and how many of them are filled.
struct Chunk {
    mem: Vec<u8>,
    start: usize,
    len: usize,
}

impl Chunk {
    fn new() -> Chunk {
        let mem = vec![0u8; CHUNK + ALIGN];
        let start = (ALIGN - mem.as_ptr().addr() % ALIGN) % ALIGN;
        Chunk { mem, start, len: 0 }
    }

    fn bytes(&self) -> &[u8] {
        &self.mem[self.start..self.start + self.len]
    }

    /// The room left.
    fn space(&mut self) -> &mut [u8] {
        &mut self.mem[self.start + self.len..self.start + CHUNK]
    }
}

/// The writer of an export with direct I/O: `Write` fills chunks, a thread writes them to the
/// direct descriptor in order, [`DirectFile::finish`] writes the tail.
pub(super) struct DirectFile<'a> {
    /// The export's ordinary descriptor: the tail is written through it.
    file: &'a File,
    current: Chunk,
    /// Where `current` starts in the file: the bytes handed to the thread so far.
    offset: u64,
    full: Option<SyncSender<Chunk>>,
    empty: Receiver<Chunk>,
    /// Chunks not allocated yet.
    unallocated: usize,
    thread: Option<JoinHandle<io::Result<File>>>,
}

impl<'a> DirectFile<'a> {
    /// Writes to `file` through `direct`, its descriptor from [`open`]; fails if the writing
    /// thread cannot be started.
    pub(super) fn new(file: &'a File, direct: File) -> io::Result<DirectFile<'a>> {
        let (full, to_write) = sync_channel::<Chunk>(1);
        let (written, empty) = sync_channel::<Chunk>(CHUNKS);
        let thread = std::thread::Builder::new().name("export-write".into()).spawn(move || -> io::Result<File> {
            let mut direct = direct;
            for chunk in to_write {
                direct.write_all(chunk.bytes())?;
                // The writer may have finished and stopped taking chunks back.
                let _ = written.send(chunk);
            }
            Ok(direct)
        })?;
        Ok(DirectFile {
            file,
            current: Chunk::new(),
            offset: 0,
            full: Some(full),
            empty,
            unallocated: CHUNKS - 1,
            thread: Some(thread),
        })
    }

    /// Hand the full current chunk to the writing thread and take an empty one.
    fn hand_over(&mut self) -> io::Result<()> {
        let next = match self.empty.try_recv() {
            Ok(chunk) => chunk,
            Err(_) if self.unallocated > 0 => {
                self.unallocated -= 1;
                Chunk::new()
            }
            Err(_) => self.empty.recv().map_err(|_| self.stopped())?,
        };
        let full = std::mem::replace(&mut self.current, next);
        self.current.len = 0;
        self.offset += full.len as u64;
        if self.full.as_ref().is_some_and(|s| s.send(full).is_ok()) { Ok(()) } else { Err(self.stopped()) }
    }

    /// Stop handing chunks over and wait for the writing thread: its direct descriptor once it
    /// has written every chunk, or why it stopped.
    fn join(&mut self) -> io::Result<File> {
        self.full = None;
        match self.thread.take().map(JoinHandle::join) {
            Some(Ok(result)) => result,
            Some(Err(_)) => Err(io::Error::other("the export's writing thread panicked")),
            None => Err(io::Error::other("the export's writing thread has already stopped")),
        }
    }

    /// Why the writing thread stopped taking chunks.
    fn stopped(&mut self) -> io::Error {
        self.join().err().unwrap_or_else(|| io::Error::other("the export's writing thread stopped"))
    }

    /// Wait for the chunks handed over, then write the last, partly filled one: its whole
    /// blocks with direct I/O, the rest through the ordinary descriptor. The caller syncs.
    pub(super) fn finish(mut self) -> io::Result<()> {
        let direct = self.join()?;
        let bytes = self.current.bytes();
        let whole = bytes.len() / ALIGN * ALIGN;
        if whole > 0 {
            direct.write_all_at(&bytes[..whole], self.offset)?;
        }
        if whole < bytes.len() {
            self.file.write_all_at(&bytes[whole..], self.offset + whole as u64)?;
        }
        Ok(())
    }
}

impl Write for DirectFile<'_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let space = self.current.space();
        let n = buf.len().min(space.len());
        space[..n].copy_from_slice(&buf[..n]);
        self.current.len += n;
        if self.current.len == CHUNK {
            self.hand_over()?;
        }
        Ok(n)
    }

    /// Nothing to do: bytes reach the file as chunks fill and at [`DirectFile::finish`].
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl Drop for DirectFile<'_> {
    /// An export abandoned mid-way (its query failed): stop the thread before the temporary
    /// file is removed.
    fn drop(&mut self) {
        let _ = self.join();
    }
}

#[cfg(all(test, target_os = "linux"))]
mod tests {
    use super::*;

    /// `writes` of the given sizes (bytes counting up, so a misplaced chunk or tail shows) into a
    /// new file through `DirectFile`; the file's bytes and what was written.
    fn write_through(writes: &[usize]) -> (Vec<u8>, Vec<u8>) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("export.csv");
        let file = File::create_new(&path).unwrap();
        let direct = open(&file).expect("the test folder's file system has direct I/O");
        let mut w = DirectFile::new(&file, direct).unwrap();
        let mut expected = Vec::new();
        let mut next = 0u32;
        for &n in writes {
            let bytes: Vec<u8> = (0..n)
                .map(|_| {
                    next = next.wrapping_add(1);
                    (next % 251) as u8
                })
                .collect();
            w.write_all(&bytes).unwrap();
            expected.extend_from_slice(&bytes);
        }
        w.finish().unwrap();
        file.sync_all().unwrap();
        (std::fs::read(&path).unwrap(), expected)
    }

    /// Empty, under one block, whole blocks, a chunk and one byte either side, and more chunks
    /// than there are buffers (so written chunks are filled again), in writes of odd sizes.
    #[test]
    fn every_byte_lands_in_order_whatever_the_sizes() {
        let cases: Vec<Vec<usize>> = vec![
            vec![],
            vec![1],
            vec![ALIGN - 1],
            vec![ALIGN],
            vec![ALIGN + 1],
            vec![CHUNK - 1],
            vec![CHUNK],
            vec![CHUNK, 1],
            vec![CHUNK + ALIGN + 7],
            vec![4093; (CHUNKS + 2) * CHUNK / 4093 + 11],
            vec![3 * CHUNK + 5, 1, 1, 2 * ALIGN],
        ];
        for writes in cases {
            let (written, expected) = write_through(&writes);
            assert_eq!(written.len(), expected.len(), "writes of {:?} bytes", &writes[..writes.len().min(4)]);
            assert!(
                written == expected,
                "writes of {:?} bytes: the file's bytes differ",
                &writes[..writes.len().min(4)]
            );
        }
    }

    /// A direct write that fails (here the "direct" descriptor is read-only) fails the export,
    /// with the operating system's reason, instead of being lost with the thread.
    #[test]
    fn a_failed_direct_write_fails_the_export() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("export.csv");
        let file = File::create_new(&path).unwrap();
        let read_only = File::open(&path).unwrap();
        let mut w = DirectFile::new(&file, read_only).unwrap();
        let chunk = vec![b'x'; CHUNK];
        let mut failed = None;
        for _ in 0..CHUNKS + 2 {
            if let Err(e) = w.write_all(&chunk) {
                failed = Some(e);
                break;
            }
        }
        let e = match failed {
            Some(e) => e,
            None => w.finish().unwrap_err(),
        };
        assert_eq!(e.raw_os_error(), Some(libc::EBADF), "{e}");
    }

    /// Only a new, empty regular file is written directly: a pipe, or a file with bytes in it,
    /// is left to the buffered writer.
    #[test]
    fn only_an_empty_regular_file_gets_direct_io() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("full.csv");
        std::fs::write(&path, b"a,b\n").unwrap();
        assert!(open(&std::fs::OpenOptions::new().write(true).open(&path).unwrap()).is_none());
        let (_reader, writer) = std::io::pipe().unwrap();
        assert!(open(&File::from(std::os::fd::OwnedFd::from(writer))).is_none());
    }
}
