//! A large module for the streaming tests, never held whole in memory: a tree with one big
//! file of incompressible pseudo-random bytes written in 1 MiB pieces, zipped to a file with
//! the core zip writer (which streams, [`super::zip::module_zip_file`]), uploaded from the
//! file, and downloaded into a file while its SHA-256 is computed as the chunks arrive; and the
//! test process's resident-set readings that show nothing was held whole.

use std::io::Write;
use std::path::Path;

use futures::{Stream, StreamExt};
use sha2::{Digest, Sha256};
use strata_central_registry::grpc::proto::registry_client::RegistryClient;
use strata_central_registry::grpc::proto::{ZipHeader, ZipRequest, zip_response};
use tokio::io::AsyncWriteExt;
use tonic::transport::Channel;

use super::config::CI_TOKEN;
use super::grpc::authed;

/// Writes `dir/go.mod` for `module` and `dir/blob.bin` with `size` pseudo-random bytes.
pub fn write_tree(dir: &Path, module: &str, size: u64) {
    std::fs::write(dir.join("go.mod"), format!("module {module}\n\ngo 1.21\n")).unwrap();
    let mut out = std::io::BufWriter::new(std::fs::File::create(dir.join("blob.bin")).unwrap());
    let mut state: u64 = 0x9E37_79B9_7F4A_7C15;
    let mut buf = vec![0u8; 1 << 20];
    let mut left = size;
    while left > 0 {
        for word in buf.chunks_exact_mut(8) {
            // xorshift64*: fast, and deflate cannot shrink its output.
            state ^= state >> 12;
            state ^= state << 25;
            state ^= state >> 27;
            word.copy_from_slice(&state.wrapping_mul(0x2545_F491_4F6C_DD1D).to_le_bytes());
        }
        let n = left.min(buf.len() as u64) as usize;
        out.write_all(&buf[..n]).unwrap();
        left -= n as u64;
    }
    out.flush().unwrap();
}

/// The file at `path` as a stream of `chunk`-byte pieces.
pub async fn file_chunks(
    path: &Path,
    chunk: usize,
) -> impl Stream<Item = bytes::Bytes> + Send + 'static {
    let file = tokio::fs::File::open(path).await.unwrap();
    tokio_util::io::ReaderStream::with_capacity(file, chunk).map(|r| r.unwrap())
}

/// What a streamed download delivered.
#[derive(Debug)]
pub struct Downloaded {
    pub header: ZipHeader,
    pub sha256: String,
    pub bytes: u64,
    pub chunks: u64,
    pub largest_chunk: usize,
}

/// Streams the zip of `module@version` into the file `out`, hashing as it goes.
pub async fn download_zip(
    client: &mut RegistryClient<Channel>,
    repository: &str,
    module: &str,
    version: &str,
    out: &Path,
) -> Downloaded {
    let request = ZipRequest {
        repository: repository.into(),
        module: module.into(),
        version: version.into(),
        offset: 0,
        length: 0,
        accept_streaming: false,
    };
    let mut stream = client
        .zip(authed(request, Some(CI_TOKEN)))
        .await
        .unwrap()
        .into_inner();
    let header = match stream.message().await.unwrap().and_then(|m| m.part) {
        Some(zip_response::Part::Header(h)) => h,
        other => panic!("first message is not a header: {other:?}"),
    };
    let mut file = tokio::io::BufWriter::new(tokio::fs::File::create(out).await.unwrap());
    let mut sha = Sha256::new();
    let (mut bytes, mut chunks, mut largest_chunk) = (0u64, 0u64, 0usize);
    while let Some(message) = stream.message().await.unwrap() {
        let Some(zip_response::Part::Data(data)) = message.part else {
            panic!("unexpected message after the header");
        };
        sha.update(&data);
        file.write_all(&data).await.unwrap();
        bytes += data.len() as u64;
        chunks += 1;
        largest_chunk = largest_chunk.max(data.len());
    }
    file.flush().await.unwrap();
    Downloaded {
        header,
        sha256: hex::encode(sha.finalize()),
        bytes,
        chunks,
        largest_chunk,
    }
}

/// The test process's peak resident set (`VmHWM`) in KiB.
pub fn peak_rss_kib() -> u64 {
    proc_status_kib("VmHWM:")
}

/// The test process's current resident set (`VmRSS`) in KiB.
pub fn rss_kib() -> u64 {
    proc_status_kib("VmRSS:")
}

fn proc_status_kib(field: &str) -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix(field))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}

/// Resets the peak resident set to the current one (Linux `clear_refs` 5), so a later
/// [`peak_rss_kib`] shows the peak of what ran in between. Returns whether it worked.
pub fn reset_peak_rss() -> bool {
    std::fs::write("/proc/self/clear_refs", "5").is_ok()
}
