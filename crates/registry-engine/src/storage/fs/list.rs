//! Listing an fs store: a blocking directory walk feeding a bounded channel, so a listing of any
//! size holds a few dozen entries in memory and stops walking when the consumer goes away.

use std::{
    fs::File,
    io,
    path::{Path, PathBuf},
    sync::Arc,
};

use futures::{StreamExt, stream::BoxStream};
use tokio::sync::mpsc;

use super::{commit::Layout, format};
use crate::storage::{KeyPrefix, ObjectKey, ObjectMeta, Operation, StorageError};

/// Entries buffered between the walker and the consumer.
const CHANNEL_BOUND: usize = 64;

type Item = Result<ObjectMeta, StorageError>;

/// Every object under `prefix`, walked on a blocking thread that starts on the first poll.
pub(crate) fn list(layout: Arc<Layout>, prefix: KeyPrefix) -> BoxStream<'static, Item> {
    futures::stream::once(async move {
        let (tx, rx) = mpsc::channel(CHANNEL_BOUND);
        tokio::task::spawn_blocking(move || walk(&layout, &prefix, &tx));
        futures::stream::unfold(rx, |mut rx| async move {
            rx.recv().await.map(|item| (item, rx))
        })
    })
    .flatten()
    .boxed()
}

/// Depth-first walk from the prefix's directory. Returns early once the receiver is dropped.
fn walk(layout: &Layout, prefix: &KeyPrefix, tx: &mpsc::Sender<Item>) {
    let start = prefix.directory().trim_end_matches('/');
    let mut stack: Vec<(PathBuf, String)> = vec![(layout.objects.join(start), start.to_owned())];
    while let Some((dir, dir_key)) = stack.pop() {
        let entries = match std::fs::read_dir(&dir) {
            Ok(entries) => entries,
            Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
            Err(e) => {
                if send(tx, Err(list_error(prefix, "read directory", e))) {
                    continue;
                }
                return;
            }
        };
        for entry in entries {
            let item = match entry.and_then(|e| Ok((e.file_type()?, e))) {
                Ok((file_type, entry)) => {
                    let Some(name) = entry.file_name().to_str().map(str::to_owned) else {
                        continue; // not a name this store writes
                    };
                    let key = if dir_key.is_empty() {
                        name
                    } else {
                        format!("{dir_key}/{name}")
                    };
                    if file_type.is_dir() {
                        let as_dir = format!("{key}/");
                        if as_dir.starts_with(prefix.as_str())
                            || prefix.as_str().starts_with(&as_dir)
                        {
                            stack.push((entry.path(), key));
                        }
                        continue;
                    }
                    if !key.starts_with(prefix.as_str()) {
                        continue;
                    }
                    match object_meta(&entry.path(), key) {
                        Ok(Some(meta)) => Ok(meta),
                        Ok(None) => continue, // removed since the directory was read
                        Err(e) => Err(e),
                    }
                }
                Err(e) => Err(list_error(prefix, "read directory entry", e)),
            };
            if !send(tx, item) {
                return;
            }
        }
    }
}

/// Sends one item; `false` once the consumer is gone.
fn send(tx: &mpsc::Sender<Item>, item: Item) -> bool {
    tx.blocking_send(item).is_ok()
}

fn object_meta(path: &Path, key: String) -> Result<Option<ObjectMeta>, StorageError> {
    let key = ObjectKey::new(key)?;
    let io_err = |context, e| StorageError::io(Operation::List, &key, context, e);
    let mut file = match File::open(path) {
        Ok(file) => file,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(io_err("open object file", e)),
    };
    let metadata = file.metadata().map_err(|e| io_err("stat object file", e))?;
    let etag = format::read_header(&mut file).map_err(|e| io_err("read object header", e))?;
    Ok(Some(ObjectMeta {
        size: metadata.len().saturating_sub(format::HEADER_LEN),
        etag,
        last_modified: metadata.modified().map_err(|e| io_err("read mtime", e))?,
        key,
    }))
}

fn list_error(prefix: &KeyPrefix, context: &'static str, e: io::Error) -> StorageError {
    StorageError::io(Operation::List, prefix, context, e)
}
