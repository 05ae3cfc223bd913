//! Compiled components, cached by the BLAKE3 hash of their bytes: in memory
//! for the life of the sandbox, and on disk (optional) across processes, so
//! the second run of the same job skips compilation.
//!
//! In memory each component is kept *prepared*: with its imports already
//! resolved against the sandbox's linker (a `JobPre`, wasmtime's
//! `InstancePre` for the `job` world), so a warm start only instantiates.
//! A component that compiles but does not link is not kept in memory (its
//! compiled form may still be on disk); it fails the same way every time.

use std::collections::HashMap;
use std::hash::{DefaultHasher, Hash, Hasher};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use wasmtime::Engine;
use wasmtime::component::{Component, Linker};

use crate::JobState;
use crate::bindings::JobPre;

/// A compiled component with its imports resolved, ready to instantiate.
pub(crate) type Prepared = Arc<JobPre<JobState>>;

/// Why a job's bytes cannot be instantiated.
#[derive(Debug)]
pub(crate) enum LoadError {
    /// Not a valid component (wasmtime's compiler or validator refused it).
    Compile(wasmtime::Error),
    /// A valid component whose imports or exports are not the `job` world's.
    Link(wasmtime::Error),
}

/// Where a component came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum CacheHit {
    /// Compiled now.
    Miss,
    /// Found compiled in this process.
    Memory,
    /// Loaded from the on-disk cache.
    Disk,
}

pub(crate) struct ComponentCache {
    memory: Mutex<HashMap<blake3::Hash, Prepared>>,
    max_entries: usize,
    dir: Option<PathBuf>,
    /// Bytes of `.cwasm` files kept in `dir` (least recently used go first).
    max_disk_bytes: u64,
    /// Ties disk entries to this wasmtime version and configuration.
    engine_tag: String,
}

impl ComponentCache {
    pub(crate) fn new(
        engine: &Engine,
        dir: Option<PathBuf>,
        max_disk_bytes: u64,
        max_entries: usize,
    ) -> ComponentCache {
        let mut hasher = DefaultHasher::new();
        engine.precompile_compatibility_hash().hash(&mut hasher);
        ComponentCache {
            memory: Mutex::new(HashMap::new()),
            max_entries,
            dir,
            max_disk_bytes,
            engine_tag: format!("{:016x}", hasher.finish()),
        }
    }

    /// The prepared component of `wasm` (whose hash is `hash`): from
    /// memory, else from disk, else compiled now; resolved against `linker`
    /// unless it came from memory.
    pub(crate) fn get_or_prepare(
        &self,
        engine: &Engine,
        linker: &Linker<JobState>,
        hash: blake3::Hash,
        wasm: &[u8],
    ) -> Result<(Prepared, CacheHit), LoadError> {
        if let Some(pre) = self.lock().get(&hash) {
            return Ok((pre.clone(), CacheHit::Memory));
        }
        let (component, hit) = self
            .get_or_compile(engine, hash, wasm)
            .map_err(LoadError::Compile)?;
        let pre = linker
            .instantiate_pre(&component)
            .and_then(JobPre::new)
            .map_err(LoadError::Link)?;
        let pre = Arc::new(pre);
        self.remember(hash, &pre);
        Ok((pre, hit))
    }

    /// The compiled component of `wasm`, from disk or compiled now (and
    /// then written to disk).
    fn get_or_compile(
        &self,
        engine: &Engine,
        hash: blake3::Hash,
        wasm: &[u8],
    ) -> wasmtime::Result<(Component, CacheHit)> {
        let path = self
            .dir
            .as_ref()
            .map(|d| d.join(format!("{}-{}.cwasm", hash.to_hex(), self.engine_tag)));
        if let Some(path) = &path
            && path.exists()
        {
            // SAFETY: the cache directory is private to this user (created
            // 0700) and its files are written only by `store` below from
            // components this engine compiled; the name binds the engine's
            // compatibility hash.
            match unsafe { Component::deserialize_file(engine, path) } {
                Ok(c) => {
                    touch(path);
                    return Ok((c, CacheHit::Disk));
                }
                // Another worker evicted it meanwhile: a miss.
                Err(_) if !path.exists() => {}
                Err(err) => {
                    tracing::warn!(path = %path.display(), %err, "ignoring unusable cache entry")
                }
            }
        }
        let component = Component::new(engine, wasm)?;
        if let Some(path) = &path {
            match store(path, &component) {
                Ok(()) => evict(path.parent().unwrap_or(path), self.max_disk_bytes),
                Err(err) => {
                    tracing::warn!(path = %path.display(), %err, "cannot write compiled component to cache")
                }
            }
        }
        Ok((component, CacheHit::Miss))
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<blake3::Hash, Prepared>> {
        match self.memory.lock() {
            Ok(m) => m,
            Err(poisoned) => poisoned.into_inner(),
        }
    }

    fn remember(&self, hash: blake3::Hash, component: &Prepared) {
        let mut memory = self.lock();
        if memory.len() >= self.max_entries {
            // Bounded, not clever: forget everything rather than track recency.
            memory.clear();
        }
        memory.insert(hash, component.clone());
    }
}

fn store(path: &Path, component: &Component) -> std::io::Result<()> {
    let bytes = component
        .serialize()
        .map_err(|e| std::io::Error::other(e.to_string()))?;
    if let Some(dir) = path.parent() {
        create_private_dir(dir)?;
    }
    suanli_fs::write_atomic(path, &bytes)
}

fn create_private_dir(dir: &Path) -> std::io::Result<()> {
    let mut builder = std::fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::DirBuilderExt;
        builder.mode(0o700);
    }
    builder.create(dir)
}

/// Upload temporaries (dot files) older than this were left by a worker
/// that died while writing; eviction deletes them.
const STALE_TEMP: std::time::Duration = std::time::Duration::from_secs(3600);

/// Marks a disk entry used (its modification time is the recency eviction
/// reads); failing only makes it look older.
fn touch(path: &Path) {
    if let Ok(file) = std::fs::OpenOptions::new().write(true).open(path) {
        let _ = file.set_modified(std::time::SystemTime::now());
    }
}

/// Deletes the least recently used `.cwasm` files in `dir` until they take
/// at most `max_bytes`. Several workers share the directory and may evict
/// at once: a file already gone is skipped, and a worker whose entry
/// vanished before it opened it compiles again (a miss). A file deleted
/// while another process maps it stays readable to that process.
pub(crate) fn evict(dir: &Path, max_bytes: u64) {
    let now = std::time::SystemTime::now();
    let mut entries = Vec::new();
    for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        let Ok(meta) = entry.metadata() else {
            continue;
        };
        let modified = meta.modified().unwrap_or(std::time::UNIX_EPOCH);
        if name.starts_with('.') {
            if now
                .duration_since(modified)
                .is_ok_and(|age| age > STALE_TEMP)
            {
                let _ = std::fs::remove_file(entry.path());
            }
        } else if name.ends_with(".cwasm") {
            entries.push((modified, entry.path(), meta.len()));
        }
    }
    let mut total: u64 = entries.iter().map(|(_, _, len)| len).sum();
    entries.sort_by_key(|(modified, _, _)| *modified);
    for (_, path, len) in entries {
        if total <= max_bytes {
            break;
        }
        match std::fs::remove_file(&path) {
            Ok(()) => total -= len,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => total -= len,
            Err(err) => tracing::warn!(path = %path.display(), %err, "cannot evict a cache entry"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cwasm_bytes(dir: &Path) -> u64 {
        std::fs::read_dir(dir)
            .unwrap()
            .flatten()
            .filter(|e| e.file_name().to_string_lossy().ends_with(".cwasm"))
            .map(|e| e.metadata().unwrap().len())
            .sum()
    }

    #[test]
    fn eviction_keeps_the_most_recently_used_entries_under_the_cap() {
        let dir = tempfile::tempdir().unwrap();
        let base = std::time::SystemTime::now() - std::time::Duration::from_secs(1000);
        for i in 0..10u64 {
            let path = dir.path().join(format!("{i}-tag.cwasm"));
            std::fs::write(&path, vec![0u8; 1000]).unwrap();
            let file = std::fs::OpenOptions::new().write(true).open(&path).unwrap();
            file.set_modified(base + std::time::Duration::from_secs(i))
                .unwrap();
        }
        // Entry 0 is the oldest on disk, but was just used.
        touch(&dir.path().join("0-tag.cwasm"));
        std::fs::write(dir.path().join("notes.txt"), vec![0u8; 5000]).unwrap();
        evict(dir.path(), 3500);
        assert!(cwasm_bytes(dir.path()) <= 3500);
        for kept in ["0", "9", "8"] {
            assert!(
                dir.path().join(format!("{kept}-tag.cwasm")).exists(),
                "{kept} evicted"
            );
        }
        assert!(!dir.path().join("1-tag.cwasm").exists());
        // Files that are not entries are not ours to delete.
        assert!(dir.path().join("notes.txt").exists());
        // Two evictions at once (workers sharing the directory) agree.
        std::thread::scope(|s| {
            s.spawn(|| evict(dir.path(), 1000));
            s.spawn(|| evict(dir.path(), 1000));
        });
        assert!(cwasm_bytes(dir.path()) <= 1000);
        assert!(dir.path().join("0-tag.cwasm").exists());
    }
}
