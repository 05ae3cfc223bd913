//! Modules and inputs fetched from the coordinator, kept on disk by hash so a
//! node fetches each blob once, within a byte cap: past it the least
//! recently used blobs are deleted (`NodeConfig::blob_cache_bytes`).

use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::sync::{Mutex, MutexGuard};

use suanli_net::Client;
use suanli_proto::Hash;

pub(crate) struct BlobCache {
    dir: PathBuf,
    max_bytes: u64,
    lru: Mutex<Lru>,
}

/// The cached files in order of last use, and their total size. Only this
/// node process writes its blob cache, so memory is the truth; at start it
/// is rebuilt from the files (oldest modification first).
#[derive(Default)]
struct Lru {
    next_use: u64,
    entries: HashMap<Hash, (u64, u64)>,
    by_use: BTreeMap<u64, Hash>,
    total: u64,
}

impl Lru {
    fn touch(&mut self, hash: Hash) {
        if let Some((used, _)) = self.entries.get_mut(&hash) {
            self.by_use.remove(used);
            *used = self.next_use;
            self.by_use.insert(self.next_use, hash);
            self.next_use += 1;
        }
    }

    fn insert(&mut self, hash: Hash, size: u64) {
        self.remove(&hash);
        self.entries.insert(hash, (self.next_use, size));
        self.by_use.insert(self.next_use, hash);
        self.next_use += 1;
        self.total += size;
    }

    fn remove(&mut self, hash: &Hash) {
        if let Some((used, size)) = self.entries.remove(hash) {
            self.by_use.remove(&used);
            self.total -= size;
        }
    }

    /// The least recently used entries to delete so the total fits `max`.
    fn evict(&mut self, max: u64) -> Vec<Hash> {
        let mut out = Vec::new();
        while self.total > max {
            let Some((_, hash)) = self.by_use.pop_first() else {
                break;
            };
            if let Some((_, size)) = self.entries.remove(&hash) {
                self.total -= size;
            }
            out.push(hash);
        }
        out
    }
}

fn lock(m: &Mutex<Lru>) -> MutexGuard<'_, Lru> {
    m.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// Blob files in `dir` (named by hash), oldest modification first; stray
/// temporaries (dot files) are deleted.
fn scan(dir: &std::path::Path) -> Vec<(Hash, u64)> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        if name.starts_with('.') {
            let _ = std::fs::remove_file(entry.path());
            continue;
        }
        let (Some(hash), Ok(meta)) = (hash_from_hex(&name), entry.metadata()) else {
            continue;
        };
        let modified = meta.modified().unwrap_or(std::time::UNIX_EPOCH);
        found.push((modified, hash, meta.len()));
    }
    found.sort_by_key(|(modified, _, _)| *modified);
    found.into_iter().map(|(_, h, len)| (h, len)).collect()
}

/// The hash a cached blob file is named by (its lowercase hex).
fn hash_from_hex(name: &str) -> Option<Hash> {
    name.parse::<Hash>().ok().filter(|h| h.to_hex() == name)
}

impl BlobCache {
    /// Opens the cache in `dir`, evicting down to `max_bytes` at once (the
    /// cap may have been lowered since the last run).
    pub(crate) fn new(dir: PathBuf, max_bytes: u64) -> std::io::Result<BlobCache> {
        std::fs::create_dir_all(&dir)?;
        let mut lru = Lru::default();
        for (hash, size) in scan(&dir) {
            lru.insert(hash, size);
        }
        let cache = BlobCache {
            dir,
            max_bytes,
            lru: Mutex::new(lru),
        };
        cache.evict();
        Ok(cache)
    }

    fn path(&self, hash: &Hash) -> PathBuf {
        self.dir.join(hash.to_hex())
    }

    fn evict(&self) {
        let victims = lock(&self.lru).evict(self.max_bytes);
        for hash in victims {
            let _ = std::fs::remove_file(self.path(&hash));
        }
    }

    /// The cached bytes of `hash`, if present and intact (a damaged file is
    /// dropped); marks it used.
    pub(crate) fn read(&self, hash: Hash) -> Option<Vec<u8>> {
        let path = self.path(&hash);
        match std::fs::read(&path) {
            Ok(bytes) if Hash::of(&bytes) == hash => {
                lock(&self.lru).touch(hash);
                Some(bytes)
            }
            Ok(_) => {
                let _ = std::fs::remove_file(&path);
                lock(&self.lru).remove(&hash);
                None
            }
            Err(_) => None,
        }
    }

    /// Keeps `bytes` as `hash` and evicts the least recently used blobs
    /// past the cap. A blob larger than the whole cap is not kept. A failed
    /// write only costs a later re-fetch.
    pub(crate) fn put(&self, hash: Hash, bytes: &[u8]) {
        let size = bytes.len() as u64;
        if size > self.max_bytes {
            return;
        }
        if suanli_fs::write_atomic(&self.path(&hash), bytes).is_ok() {
            lock(&self.lru).insert(hash, size);
            self.evict();
        }
    }

    /// Bytes the cache holds now.
    pub(crate) fn bytes(&self) -> u64 {
        lock(&self.lru).total
    }

    /// The blob's bytes, from disk or else from the coordinator.
    pub(crate) async fn get(
        self: &std::sync::Arc<Self>,
        client: &Client,
        hash: Hash,
    ) -> Result<Vec<u8>, suanli_net::NetError> {
        let cache = self.clone();
        let cached = tokio::task::spawn_blocking(move || cache.read(hash))
            .await
            .map_err(|e| suanli_net::NetError::Io(std::io::Error::other(e)))?;
        if let Some(bytes) = cached {
            return Ok(bytes);
        }
        let bytes = client.get_blob(hash).await?;
        let cache = self.clone();
        tokio::task::spawn_blocking(move || {
            cache.put(hash, &bytes);
            bytes
        })
        .await
        .map_err(|e| suanli_net::NetError::Io(std::io::Error::other(e)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dir_bytes(dir: &std::path::Path) -> u64 {
        std::fs::read_dir(dir)
            .unwrap()
            .flatten()
            .map(|e| e.metadata().unwrap().len())
            .sum()
    }

    #[test]
    fn the_cache_stays_under_its_cap_and_keeps_what_was_used_last() {
        let dir = tempfile::tempdir().unwrap();
        let cache = BlobCache::new(dir.path().to_path_buf(), 10_000).unwrap();
        let blob = |i: u32| vec![i as u8; 3000 + i as usize];
        let first = blob(0);
        cache.put(Hash::of(&first), &first);
        for i in 1..20 {
            let b = blob(i);
            cache.put(Hash::of(&b), &b);
            // The first blob is used between every insertion, so it stays.
            assert_eq!(cache.read(Hash::of(&first)).as_deref(), Some(&first[..]));
            assert!(dir_bytes(dir.path()) <= 10_000, "over the cap after {i}");
            assert_eq!(cache.bytes(), dir_bytes(dir.path()));
        }
        let last = blob(19);
        assert!(cache.read(Hash::of(&last)).is_some());
        assert!(
            cache.read(Hash::of(&blob(5))).is_none(),
            "an old blob was kept"
        );
        // Larger than the whole cap: not kept, nothing evicted for it.
        let huge = vec![7u8; 20_000];
        cache.put(Hash::of(&huge), &huge);
        assert!(cache.read(Hash::of(&huge)).is_none());
        assert!(cache.read(Hash::of(&first)).is_some());
        // A restart with a smaller cap evicts at once, oldest files first.
        drop(cache);
        let cache = BlobCache::new(dir.path().to_path_buf(), 4_000).unwrap();
        assert!(dir_bytes(dir.path()) <= 4_000);
        assert_eq!(cache.bytes(), dir_bytes(dir.path()));
    }
}
