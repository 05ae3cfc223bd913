//! Modules and inputs fetched from the coordinator, kept on disk by hash so a
//! node fetches each blob once.

use std::path::PathBuf;

use suanli_net::Client;
use suanli_proto::Hash;

pub(crate) struct BlobCache {
    dir: PathBuf,
}

impl BlobCache {
    pub(crate) fn new(dir: PathBuf) -> std::io::Result<BlobCache> {
        std::fs::create_dir_all(&dir)?;
        Ok(BlobCache { dir })
    }

    /// The blob's bytes, from disk or else from the coordinator.
    pub(crate) async fn get(
        &self,
        client: &Client,
        hash: Hash,
    ) -> Result<Vec<u8>, suanli_net::NetError> {
        let path = self.dir.join(hash.to_hex());
        if let Ok(bytes) = tokio::fs::read(&path).await
            && Hash::of(&bytes) == hash
        {
            return Ok(bytes);
        }
        let bytes = client.get_blob(hash).await?;
        let tmp = path.with_extension("tmp");
        if tokio::fs::write(&tmp, &bytes).await.is_ok() {
            let _ = tokio::fs::rename(&tmp, &path).await;
        }
        Ok(bytes)
    }
}
