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
    /// The same storage without the local disk's fsync: for staging files, which only the run
    /// that wrote them reads, before its commit, and which no published version ever lists (a
    /// crash loses nothing by losing them). Equal to `store` on every other store.
    scratch: Arc<dyn ObjectStore>,
    root: Path,
    store_url: ObjectStoreUrl,
    /// Set once the store has shown that it refuses a second create-only put (see
    /// [`Lake::verify_create_only`]); shared by clones so a process probes once.
    create_only_checked: Arc<std::sync::atomic::AtomicBool>,
    /// The Delta table properties published with each table's Delta log.
    pub(crate) delta: crate::DeltaSettings,
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
        // A local lake gets fsync (object_store's local store never syncs): a version must
        // survive a power cut once it counts as published.
        let scratch = Arc::clone(&store);
        let store: Arc<dyn ObjectStore> =
            if url.scheme() == "file" { Arc::new(crate::durable::DurableLocal::new(store)) } else { store };
        Self::assemble(url, store, scratch, root)
    }

    /// A lake over an already built object store, rooted at `url`'s path. For tests that wrap a
    /// real store (to gate or break some of its operations) and for embedding.
    pub fn with_store(url: &Url, store: Arc<dyn ObjectStore>) -> Result<Lake> {
        let root = Path::from(url.path().trim_matches('/'));
        Self::assemble(url, Arc::clone(&store), store, root)
    }

    fn assemble(url: &Url, store: Arc<dyn ObjectStore>, scratch: Arc<dyn ObjectStore>, root: Path) -> Result<Lake> {
        let bad = |message: String| LakeError::Url { url: url.to_string(), message };
        let store_url = ObjectStoreUrl::parse(format!("{}://{}", url.scheme(), url.host_str().unwrap_or("")))
            .map_err(|e| bad(e.to_string()))?;
        Ok(Lake {
            url: url.clone(),
            store,
            scratch,
            root,
            store_url,
            create_only_checked: Arc::new(std::sync::atomic::AtomicBool::new(false)),
            delta: crate::DeltaSettings::default(),
        })
    }

    /// Check that the store really refuses a second create-only put of the same key, which the
    /// lease and the commit log rely on for "exactly one writer wins". Some S3-compatible
    /// servers accept `If-None-Match: *` and ignore it; on such a store two runs would both
    /// "win" and the second publish would overwrite the first. Probes once per process (a key
    /// under `_lastseen/probe/`, removed afterwards); called before the lease is first taken, so
    /// read-only commands never need write access.
    pub async fn verify_create_only(&self) -> Result<()> {
        use object_store::{ObjectStoreExt, PutMode, PutOptions, PutPayload};
        use std::sync::atomic::Ordering;
        if self.create_only_checked.load(Ordering::Acquire) {
            return Ok(());
        }
        let rel = format!("_lastseen/probe/{}", uuid::Uuid::new_v4().simple());
        let path = self.path(&rel);
        let create = || PutOptions { mode: PutMode::Create, ..Default::default() };
        self.store
            .put_opts(&path, PutPayload::from_static(b"first"), create())
            .await
            .map_err(|e| LakeError::store(&path, e))?;
        let second = self.store.put_opts(&path, PutPayload::from_static(b"second"), create()).await;
        let cleanup = self.store.delete(&path).await;
        match second {
            Err(object_store::Error::AlreadyExists { .. } | object_store::Error::Precondition { .. }) => {}
            Ok(_) => {
                return Err(LakeError::CreateOnlyIgnored { url: self.url.to_string(), probe: rel });
            }
            Err(e) => return Err(LakeError::store(&path, e)),
        }
        if let Err(e) = cleanup {
            tracing::debug!(%path, error = %e, "could not remove the create-only probe");
        }
        self.create_only_checked.store(true, Ordering::Release);
        Ok(())
    }

    pub fn url(&self) -> &Url {
        &self.url
    }

    pub fn store(&self) -> &Arc<dyn ObjectStore> {
        &self.store
    }

    /// The store for staging files (see the field): same objects, no fsync on a local disk.
    pub(crate) fn scratch_store(&self) -> &Arc<dyn ObjectStore> {
        &self.scratch
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
