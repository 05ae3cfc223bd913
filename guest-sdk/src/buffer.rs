use bytemuck::Pod;

use crate::Result;
use crate::bindings::suanli::gpu::compute::{self, BufferUsage};

/// GPU memory owned by the job; freed on the host when dropped.
///
/// Sizes are whole multiples of 4 bytes: byte data is zero-padded.
pub struct Buffer {
    pub(crate) raw: compute::Buffer,
}

fn padded(len: usize) -> u64 {
    (len as u64).div_ceil(4) * 4
}

impl Buffer {
    /// A zero-filled storage buffer of `size` bytes (rounded up to 4).
    pub fn new(size: u64) -> Result<Buffer> {
        Ok(Buffer {
            raw: compute::Buffer::create(size.div_ceil(4) * 4, BufferUsage::STORAGE)?,
        })
    }

    /// A zero-filled storage buffer holding `len` values of `T`.
    pub fn zeroed<T: Pod>(len: usize) -> Result<Buffer> {
        Buffer::new(padded(len * std::mem::size_of::<T>()))
    }

    /// A storage buffer initialised with `data`.
    pub fn from_slice<T: Pod>(data: &[T]) -> Result<Buffer> {
        Buffer::from_bytes(bytemuck::cast_slice(data))
    }

    /// A storage buffer initialised with `bytes` (zero-padded to 4).
    pub fn from_bytes(bytes: &[u8]) -> Result<Buffer> {
        let buffer = Buffer::new(padded(bytes.len()).max(4))?;
        buffer.write_bytes(0, bytes)?;
        Ok(buffer)
    }

    /// A uniform buffer holding `value` (e.g. a `#[repr(C)]` params struct,
    /// padded to 16 bytes as WGSL uniforms want).
    pub fn uniform<T: Pod>(value: &T) -> Result<Buffer> {
        let bytes = bytemuck::bytes_of(value);
        let size = (bytes.len() as u64).div_ceil(16).max(1) * 16;
        let buffer = Buffer {
            raw: compute::Buffer::create(size, BufferUsage::UNIFORM)?,
        };
        buffer.write_bytes(0, bytes)?;
        Ok(buffer)
    }

    pub fn size(&self) -> u64 {
        self.raw.size()
    }

    /// Writes `bytes` at `offset` (a multiple of 4), zero-padding to 4.
    pub fn write_bytes(&self, offset: u64, bytes: &[u8]) -> Result<()> {
        if bytes.len().is_multiple_of(4) {
            self.raw.write(offset, bytes)?;
        } else {
            let mut data = bytes.to_vec();
            data.resize(padded(bytes.len()) as usize, 0);
            self.raw.write(offset, &data)?;
        }
        Ok(())
    }

    pub fn write_slice<T: Pod>(&self, offset: u64, data: &[T]) -> Result<()> {
        self.write_bytes(offset, bytemuck::cast_slice(data))
    }

    /// The whole buffer's bytes.
    pub fn read_bytes(&self) -> Result<Vec<u8>> {
        Ok(self.raw.read(0, self.size())?)
    }

    /// `len` bytes at `offset` (both multiples of 4).
    pub fn read_range(&self, offset: u64, len: u64) -> Result<Vec<u8>> {
        Ok(self.raw.read(offset, len)?)
    }

    /// The whole buffer as values of `T`.
    pub fn read_vec<T: Pod>(&self) -> Result<Vec<T>> {
        let bytes = self.read_bytes()?;
        let whole = bytes.len() / std::mem::size_of::<T>().max(1) * std::mem::size_of::<T>();
        Ok(bytemuck::pod_collect_to_vec(&bytes[..whole]))
    }
}
