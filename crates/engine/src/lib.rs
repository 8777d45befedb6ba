//! The Arch data plane: runs an [`xray::Config`].
