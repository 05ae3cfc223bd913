//! Compiled components, cached by the BLAKE3 hash of their bytes: in memory
//! for the life of the sandbox, and on disk (optional) across processes, so
//! the second run of the same job skips compilation.

use std::collections::HashMap;
use std::hash::{DefaultHasher, Hash, Hasher};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use wasmtime::Engine;
use wasmtime::component::Component;

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
    memory: Mutex<HashMap<blake3::Hash, Component>>,
    max_entries: usize,
    dir: Option<PathBuf>,
    /// Ties disk entries to this wasmtime version and configuration.
    engine_tag: String,
}

impl ComponentCache {
    pub(crate) fn new(engine: &Engine, dir: Option<PathBuf>, max_entries: usize) -> ComponentCache {
        let mut hasher = DefaultHasher::new();
        engine.precompile_compatibility_hash().hash(&mut hasher);
        ComponentCache {
            memory: Mutex::new(HashMap::new()),
            max_entries,
            dir,
            engine_tag: format!("{:016x}", hasher.finish()),
        }
    }

    pub(crate) fn get_or_compile(
        &self,
        engine: &Engine,
        hash: blake3::Hash,
        wasm: &[u8],
    ) -> wasmtime::Result<(Component, CacheHit)> {
        if let Some(c) = self.lock().get(&hash) {
            return Ok((c.clone(), CacheHit::Memory));
        }
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
                    self.remember(hash, &c);
                    return Ok((c, CacheHit::Disk));
                }
                Err(err) => {
                    tracing::warn!(path = %path.display(), %err, "ignoring unusable cache entry")
                }
            }
        }
        let component = Component::new(engine, wasm)?;
        if let Some(path) = &path
            && let Err(err) = store(path, &component)
        {
            tracing::warn!(path = %path.display(), %err, "cannot write compiled component to cache");
        }
        self.remember(hash, &component);
        Ok((component, CacheHit::Miss))
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<blake3::Hash, Component>> {
        match self.memory.lock() {
            Ok(m) => m,
            Err(poisoned) => poisoned.into_inner(),
        }
    }

    fn remember(&self, hash: blake3::Hash, component: &Component) {
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
    let tmp = path.with_extension(format!("tmp{}", std::process::id()));
    std::fs::write(&tmp, bytes)?;
    std::fs::rename(&tmp, path)
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
