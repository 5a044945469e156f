//! fsync for a lake on a local disk: object_store's `LocalFileSystem` writes a temporary file and
//! renames or hard-links it into place but never syncs, so after a power cut a published log
//! version or a data file it lists can come back empty. This wrapper syncs every written file,
//! and the folders above it (a new `dt=` partition folder is itself a new entry in its table's)
//! before the put counts as done, so "published" means "on disk".

use std::fmt;
use std::path::PathBuf;
use std::sync::Arc;

use async_trait::async_trait;
use futures::stream::BoxStream;
use object_store::path::Path;
use object_store::{
    CopyOptions, GetOptions, GetResult, ListResult, MultipartUpload, ObjectMeta, ObjectStore, PutMultipartOptions,
    PutOptions, PutPayload, PutResult, UploadPart,
};

/// A local-disk store (built by `LocalFileSystem::new()`, so object paths are absolute
/// filesystem paths) whose writes are durable when they return.
#[derive(Debug)]
pub(crate) struct DurableLocal {
    inner: Arc<dyn ObjectStore>,
}

impl DurableLocal {
    pub(crate) fn new(inner: Arc<dyn ObjectStore>) -> Self {
        DurableLocal { inner }
    }
}

impl fmt::Display for DurableLocal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "DurableLocal({})", self.inner)
    }
}

fn fs_path(location: &Path) -> PathBuf {
    // `LocalFileSystem::new()` has no prefix: the object path is the absolute path without its
    // leading slash. Lake paths are plain ASCII, so no percent-decoding is needed.
    PathBuf::from(format!("/{location}"))
}

/// fsync the file and the three folders above it (the partition, the table and the lake root
/// gain entries on a table's first commit). Blocking I/O, so on the blocking pool.
async fn sync_path(location: &Path) -> object_store::Result<()> {
    let file = fs_path(location);
    tokio::task::spawn_blocking(move || -> std::io::Result<()> {
        std::fs::File::open(&file)?.sync_all()?;
        let mut dir = file.parent();
        for _ in 0..3 {
            let Some(d) = dir else { break };
            std::fs::File::open(d)?.sync_all()?;
            dir = d.parent();
        }
        Ok(())
    })
    .await
    .map_err(|e| object_store::Error::Generic { store: "DurableLocal", source: Box::new(e) })?
    .map_err(|e| object_store::Error::Generic { store: "DurableLocal", source: Box::new(e) })
}

#[async_trait]
impl ObjectStore for DurableLocal {
    async fn put_opts(
        &self,
        location: &Path,
        payload: PutPayload,
        opts: PutOptions,
    ) -> object_store::Result<PutResult> {
        let r = self.inner.put_opts(location, payload, opts).await?;
        sync_path(location).await?;
        Ok(r)
    }

    async fn put_multipart_opts(
        &self,
        location: &Path,
        opts: PutMultipartOptions,
    ) -> object_store::Result<Box<dyn MultipartUpload>> {
        let inner = self.inner.put_multipart_opts(location, opts).await?;
        Ok(Box::new(DurableUpload { inner, location: location.clone() }))
    }

    async fn get_opts(&self, location: &Path, options: GetOptions) -> object_store::Result<GetResult> {
        self.inner.get_opts(location, options).await
    }

    async fn get_ranges(
        &self,
        location: &Path,
        ranges: &[std::ops::Range<u64>],
    ) -> object_store::Result<Vec<bytes::Bytes>> {
        // The local store reads all ranges from one open file; keep that for Parquet scans.
        self.inner.get_ranges(location, ranges).await
    }

    fn delete_stream(
        &self,
        locations: BoxStream<'static, object_store::Result<Path>>,
    ) -> BoxStream<'static, object_store::Result<Path>> {
        self.inner.delete_stream(locations)
    }

    fn list(&self, prefix: Option<&Path>) -> BoxStream<'static, object_store::Result<ObjectMeta>> {
        self.inner.list(prefix)
    }

    fn list_with_offset(
        &self,
        prefix: Option<&Path>,
        offset: &Path,
    ) -> BoxStream<'static, object_store::Result<ObjectMeta>> {
        self.inner.list_with_offset(prefix, offset)
    }

    async fn list_with_delimiter(&self, prefix: Option<&Path>) -> object_store::Result<ListResult> {
        self.inner.list_with_delimiter(prefix).await
    }

    async fn copy_opts(&self, from: &Path, to: &Path, options: CopyOptions) -> object_store::Result<()> {
        self.inner.copy_opts(from, to, options).await?;
        sync_path(to).await
    }
}

#[derive(Debug)]
struct DurableUpload {
    inner: Box<dyn MultipartUpload>,
    location: Path,
}

#[async_trait]
impl MultipartUpload for DurableUpload {
    fn put_part(&mut self, data: PutPayload) -> UploadPart {
        self.inner.put_part(data)
    }

    async fn complete(&mut self) -> object_store::Result<PutResult> {
        let r = self.inner.complete().await?;
        sync_path(&self.location).await?;
        Ok(r)
    }

    async fn abort(&mut self) -> object_store::Result<()> {
        self.inner.abort().await
    }
}
