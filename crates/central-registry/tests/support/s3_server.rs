//! A real S3-protocol server for the tests (the launcher lives in `strata_testkit::s3_server`),
//! with the registry's view of it: a backend configuration for a bucket, and a bare SDK client
//! to look behind the backend's back.

use std::ops::Deref;

use strata_central_registry::storage::s3::{S3Config, S3Credentials};
use strata_testkit::s3_server::{ACCESS_KEY, REGION, SECRET_KEY};
// Each including test uses its own subset.
#[allow(unused_imports)]
pub use strata_testkit::s3_server::{Flavor, skipped};

/// A running server; killed when dropped. Derefs to the testkit's server (`endpoint`, `flavor`).
#[derive(Debug)]
pub struct S3Server(strata_testkit::s3_server::S3Server);

impl S3Server {
    /// Starts the server, or fails with a message saying how to install it.
    pub fn start() -> Result<Self, String> {
        strata_testkit::s3_server::S3Server::start().map(Self)
    }

    /// A backend configuration for `bucket` on this server.
    pub fn config(&self, bucket: &str, prefix: &str) -> S3Config {
        S3Config {
            bucket: bucket.to_owned(),
            region: REGION.to_owned(),
            endpoint: Some(self.endpoint().to_owned()),
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

    /// A bare SDK client for the server, to look behind the backend's back (e.g. at incomplete
    /// multipart uploads).
    pub fn raw_client(&self) -> aws_sdk_s3::Client {
        use aws_sdk_s3::config::{BehaviorVersion, Credentials, Region};
        let config = aws_sdk_s3::Config::builder()
            .behavior_version(BehaviorVersion::latest())
            .region(Region::new(REGION))
            .endpoint_url(self.endpoint())
            .force_path_style(true)
            .credentials_provider(Credentials::new(ACCESS_KEY, SECRET_KEY, None, None, "test"))
            .build();
        aws_sdk_s3::Client::from_conf(config)
    }
}

impl Deref for S3Server {
    type Target = strata_testkit::s3_server::S3Server;

    fn deref(&self) -> &Self::Target {
        &self.0
    }
}
