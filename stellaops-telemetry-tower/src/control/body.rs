//! The control plane's response body: a whole JSON answer, or an archive streamed in chunks
//! from the thread that writes it.

use std::fmt;
use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::Bytes;
use http_body::{Body, Frame, SizeHint};
use tokio::sync::mpsc;

use super::export::Piece;

/// The body of every [`ControlPlane`](super::ControlPlane) answer: the whole JSON text of an
/// answer, or a forensic export's archive, streamed chunk by chunk as it is written.
///
/// A streamed body ends with an error when the export fails after the answer's head was sent,
/// so the client sees a truncated transfer rather than a short archive that looks whole.
/// Collect it with [`http_body_util::BodyExt::collect`]; `From<String>` makes a whole body.
///
/// # Example
///
/// ```
/// use http_body_util::BodyExt;
/// use stellaops_telemetry_tower::control::ControlBody;
///
/// # tokio::runtime::Builder::new_current_thread().build()?.block_on(async {
/// let body = ControlBody::from(String::from("{\"profiles\":[]}\n"));
/// let bytes = body.collect().await?.to_bytes();
/// assert_eq!(&bytes[..], b"{\"profiles\":[]}\n");
/// # Ok::<(), std::io::Error>(())
/// # })?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct ControlBody {
    kind: Kind,
}

enum Kind {
    /// A whole body, taken by the first poll.
    Full(Option<Bytes>),
    /// An archive: the chunk already received, then the rest from the writing thread.
    Stream {
        first: Option<Bytes>,
        pieces: mpsc::Receiver<Piece>,
        ended: bool,
    },
}

impl ControlBody {
    /// A streamed body: `first`, then the pieces the export sends.
    pub(super) fn stream(first: Bytes, pieces: mpsc::Receiver<Piece>) -> ControlBody {
        ControlBody {
            kind: Kind::Stream {
                first: Some(first),
                pieces,
                ended: false,
            },
        }
    }
}

impl fmt::Debug for ControlBody {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.kind {
            Kind::Full(bytes) => f
                .debug_struct("ControlBody")
                .field("full", &bytes.as_ref().map_or(0, Bytes::len))
                .finish(),
            Kind::Stream { ended, .. } => f
                .debug_struct("ControlBody")
                .field("stream", &true)
                .field("ended", ended)
                .finish(),
        }
    }
}

impl Default for ControlBody {
    /// An empty body.
    fn default() -> ControlBody {
        ControlBody {
            kind: Kind::Full(None),
        }
    }
}

impl From<String> for ControlBody {
    fn from(text: String) -> ControlBody {
        ControlBody::from(Bytes::from(text))
    }
}

impl From<Bytes> for ControlBody {
    fn from(bytes: Bytes) -> ControlBody {
        let bytes = (!bytes.is_empty()).then_some(bytes);
        ControlBody {
            kind: Kind::Full(bytes),
        }
    }
}

impl Body for ControlBody {
    type Data = Bytes;
    type Error = std::io::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, std::io::Error>>> {
        match &mut self.kind {
            Kind::Full(bytes) => Poll::Ready(bytes.take().map(|b| Ok(Frame::data(b)))),
            Kind::Stream {
                first,
                pieces,
                ended,
            } => {
                if let Some(bytes) = first.take() {
                    return Poll::Ready(Some(Ok(Frame::data(bytes))));
                }
                if *ended {
                    return Poll::Ready(None);
                }
                let piece = match pieces.poll_recv(cx) {
                    Poll::Pending => return Poll::Pending,
                    Poll::Ready(piece) => piece,
                };
                match piece {
                    Some(Piece::Data(bytes)) => Poll::Ready(Some(Ok(Frame::data(bytes)))),
                    Some(Piece::Done) => {
                        *ended = true;
                        Poll::Ready(None)
                    }
                    Some(Piece::Failed { refusal, .. }) => {
                        *ended = true;
                        Poll::Ready(Some(Err(std::io::Error::other(refusal.error))))
                    }
                    // The writing thread went away without saying it was done: never let a
                    // cut archive end like a whole one.
                    None => {
                        *ended = true;
                        Poll::Ready(Some(Err(std::io::Error::other(
                            "the export ended before the archive was complete",
                        ))))
                    }
                }
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        match &self.kind {
            Kind::Full(bytes) => bytes.is_none(),
            Kind::Stream { first, ended, .. } => first.is_none() && *ended,
        }
    }

    fn size_hint(&self) -> SizeHint {
        match &self.kind {
            Kind::Full(bytes) => SizeHint::with_exact(bytes.as_ref().map_or(0, |b| b.len() as u64)),
            Kind::Stream { .. } => SizeHint::default(),
        }
    }
}
