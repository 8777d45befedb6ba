//! The UDP side of a Shadowsocks inbound (placeholder until the relay lands).

use crate::{PortShared, Shared};
use std::sync::Arc;
use tokio::net::UdpSocket;
use tokio_util::sync::CancellationToken;

pub(crate) async fn serve(
    _socket: UdpSocket,
    _port: Arc<PortShared>,
    _shared: Arc<Shared>,
    token: CancellationToken,
) {
    token.cancelled().await;
}
