//! The registry's view of a test S3 server (MinIO, started by `strata_testkit::s3_server`): a
//! backend configuration for a bucket on it, a connected store with the bucket created, and a
//! bare SDK client to look behind the backend's back (e.g. at incomplete multipart uploads).

use strata_central_registry::storage::s3::{S3Config, S3Credentials, S3Store};
use strata_testkit::s3_server::{ACCESS_KEY, REGION, S3Server, SECRET_KEY};

/// A backend configuration for `bucket` on `server`, keys under `prefix`.
pub fn config(server: &S3Server, bucket: &str, prefix: &str) -> S3Config {
    S3Config {
        bucket: bucket.to_owned(),
        region: REGION.to_owned(),
        endpoint: Some(server.endpoint().to_owned()),
        path_style: true,
        prefix: prefix.to_owned(),
        credentials: S3Credentials::Static {
            access_key_id: ACCESS_KEY.to_owned(),
            secret_access_key: SECRET_KEY.to_owned(),
            session_token: None,
        },
        part_size: 8 * 1024 * 1024,
    }
}

/// A store for `bucket` on `server` (keys under `prefix`), the bucket created.
pub async fn store(server: &S3Server, bucket: &str, prefix: &str) -> S3Store {
    let store = S3Store::connect(&config(server, bucket, prefix))
        .await
        .expect("connect");
    store.ensure_bucket().await.expect("create bucket");
    store
}

/// A bare SDK client for `server`.
pub fn raw_client(server: &S3Server) -> aws_sdk_s3::Client {
    use aws_sdk_s3::config::{BehaviorVersion, Credentials, Region};
    let config = aws_sdk_s3::Config::builder()
        .behavior_version(BehaviorVersion::latest())
        .region(Region::new(REGION))
        .endpoint_url(server.endpoint())
        .force_path_style(true)
        .credentials_provider(Credentials::new(ACCESS_KEY, SECRET_KEY, None, None, "test"))
        .build();
    aws_sdk_s3::Client::from_conf(config)
}
