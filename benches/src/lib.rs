//! Shared pieces of the benchmarks: in-memory writers identical for every stack measured.

use std::io::Write;
use std::sync::Arc;

use parking_lot::Mutex;

/// An in-memory writer: appends into a shared buffer that is cleared when it grows past
/// 1 MiB, so every stack pays the same copy and nothing else.
#[derive(Clone, Default)]
pub struct MemoryWriter {
    buffer: Arc<Mutex<Vec<u8>>>,
}

impl MemoryWriter {
    /// An empty writer.
    pub fn new() -> Self {
        Self::default()
    }

    /// Bytes currently held (for sanity checks).
    pub fn len(&self) -> usize {
        self.buffer.lock().len()
    }

    /// Whether nothing is held.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// A copy of the buffer.
    pub fn contents(&self) -> Vec<u8> {
        self.buffer.lock().clone()
    }
}

impl Write for MemoryWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let mut buffer = self.buffer.lock();
        if buffer.len() > 1 << 20 {
            buffer.clear();
        }
        buffer.extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}
