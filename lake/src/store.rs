//! Opening the lake: storage URL → object store + root prefix, and the paths of everything in it.

use std::collections::BTreeMap;
use std::sync::Arc;

use datafusion::execution::object_store::ObjectStoreUrl;
use object_store::ObjectStore;
use object_store::path::Path;
use url::Url;

use crate::{LakeError, Result};

/// A lake at a storage URL (`file://`, `memory://`, `s3://`, `gs://`, `az://`…).
#[derive(Clone)]
pub struct Lake {
    url: Url,
    store: Arc<dyn ObjectStore>,
    root: Path,
    store_url: ObjectStoreUrl,
}

impl std::fmt::Debug for Lake {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The URL never carries credentials (config validation rejects userinfo); options might,
        // so they are not kept or printed.
        f.debug_struct("Lake").field("url", &self.url.as_str()).finish()
    }
}

impl Lake {
    /// Open the lake at `url`. `options` go to the object store builder (e.g. `aws_endpoint`,
    /// `aws_allow_http`); cloud credentials are also taken from the usual environment variables.
    pub fn open(url: &Url, options: &BTreeMap<String, String>) -> Result<Lake> {
        let bad = |message: String| LakeError::Url { url: url.to_string(), message };
        if url.scheme() == "file" {
            let path = url.to_file_path().map_err(|()| bad("not an absolute local path".into()))?;
            std::fs::create_dir_all(&path)
                .map_err(|e| bad(format!("cannot create directory {}: {e}", path.display())))?;
        }
        let (store, root) = object_store_for(url, options)?;
        let store_url = ObjectStoreUrl::parse(format!("{}://{}", url.scheme(), url.host_str().unwrap_or("")))
            .map_err(|e| bad(e.to_string()))?;
        Ok(Lake { url: url.clone(), store, root, store_url })
    }

    pub fn url(&self) -> &Url {
        &self.url
    }

    pub fn store(&self) -> &Arc<dyn ObjectStore> {
        &self.store
    }

    /// The URL DataFusion registers this lake's object store under.
    pub fn store_url(&self) -> &ObjectStoreUrl {
        &self.store_url
    }

    /// An object path for a path relative to the lake root (as stored in the commit log).
    pub fn path(&self, relative: &str) -> Path {
        let mut parts: Vec<String> = self.root.parts().map(|p| p.as_ref().to_string()).collect();
        parts.extend(relative.split('/').filter(|s| !s.is_empty()).map(str::to_string));
        Path::from_iter(parts)
    }

    /// The path relative to the lake root, for an object path under it.
    pub(crate) fn relative(&self, path: &Path) -> Option<String> {
        path.prefix_match(&self.root).map(|parts| parts.map(|p| p.as_ref().to_string()).collect::<Vec<_>>().join("/"))
    }

    pub(crate) fn partition_dir(table: &str, dt: chrono::NaiveDate) -> String {
        format!("{table}/{}={}", crate::PARTITION_COLUMN, dt.format("%Y-%m-%d"))
    }
}

/// The object store serving `url` and the path `url` names in it. Creates nothing: used to open
/// the lake (after creating a local root) and to read single input files such as an identity
/// export. `options` go to the builder; cloud credentials also come from the usual environment
/// variables, with explicit options winning.
pub fn object_store_for(url: &Url, options: &BTreeMap<String, String>) -> Result<(Arc<dyn ObjectStore>, Path)> {
    let bad = |message: String| LakeError::Url { url: url.to_string(), message };
    Ok(match url.scheme() {
        "file" => {
            let path = url.to_file_path().map_err(|()| bad("not an absolute local path".into()))?;
            let root = Path::from_absolute_path(&path).map_err(|e| bad(e.to_string()))?;
            (Arc::new(object_store::local::LocalFileSystem::new()), root)
        }
        "memory" => (Arc::new(object_store::memory::InMemory::new()), Path::from(url.path().trim_matches('/'))),
        _ => {
            let opts = options.iter().map(|(k, v)| (k.to_ascii_lowercase(), v.clone()));
            let mut with_env: Vec<(String, String)> = std::env::vars()
                .filter(|(k, _)| k.starts_with("AWS_") || k.starts_with("GOOGLE_") || k.starts_with("AZURE_"))
                .map(|(k, v)| (k.to_ascii_lowercase(), v))
                .collect();
            with_env.extend(opts);
            let (store, root) = object_store::parse_url_opts(url, with_env).map_err(|e| bad(e.to_string()))?;
            (Arc::from(store), root)
        }
    })
}

/// The whole content of the single object at `url` (an input file, not a lake table).
pub async fn read_object(url: &Url, options: &BTreeMap<String, String>) -> Result<bytes::Bytes> {
    use object_store::ObjectStoreExt;
    let (store, path) = object_store_for(url, options)?;
    let got = store.get(&path).await.map_err(|e| LakeError::store(url.as_str(), e))?;
    got.bytes().await.map_err(|e| LakeError::store(url.as_str(), e))
}
