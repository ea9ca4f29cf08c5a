use crate::error::{ParseError, Reason};

/// An avatar image: JPG, GIF or PNG, recognised by its first bytes (never by
/// a name), at most 1,500 KB.
#[derive(Clone, PartialEq, Eq)]
pub struct Avatar {
    bytes: Vec<u8>,
    content_type: &'static str,
}

impl Avatar {
    pub const MAX_BYTES: usize = 1_500 * 1024;

    pub fn parse(bytes: Vec<u8>) -> Result<Self, ParseError> {
        if bytes.len() > Self::MAX_BYTES {
            return Err(ParseError::new(
                Reason::ImageTooLarge,
                "must be at most 1,500 KB",
            ));
        }
        let content_type = if bytes.starts_with(&[0xFF, 0xD8, 0xFF]) {
            "image/jpeg"
        } else if bytes.starts_with(b"\x89PNG\r\n\x1a\n") {
            "image/png"
        } else if bytes.starts_with(b"GIF87a") || bytes.starts_with(b"GIF89a") {
            "image/gif"
        } else {
            return Err(ParseError::new(
                Reason::UnsupportedImage,
                "must be a JPG, GIF or PNG image",
            ));
        };
        Ok(Self {
            bytes,
            content_type,
        })
    }

    pub fn content_type(&self) -> &'static str {
        self.content_type
    }

    pub fn into_bytes(self) -> Vec<u8> {
        self.bytes
    }
}

impl std::fmt::Debug for Avatar {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "Avatar({}, {} bytes)",
            self.content_type,
            self.bytes.len()
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recognises_images_by_content() {
        assert_eq!(
            Avatar::parse(b"\xFF\xD8\xFF\xE0rest".to_vec())
                .unwrap()
                .content_type(),
            "image/jpeg"
        );
        assert_eq!(
            Avatar::parse(b"\x89PNG\r\n\x1a\nrest".to_vec())
                .unwrap()
                .content_type(),
            "image/png"
        );
        assert_eq!(
            Avatar::parse(b"GIF89a...".to_vec()).unwrap().content_type(),
            "image/gif"
        );
        for bad in [&b""[..], b"BM bitmap", b"<svg/>", b"\x89PNG"] {
            assert_eq!(
                Avatar::parse(bad.to_vec()).unwrap_err().reason,
                Reason::UnsupportedImage
            );
        }
        let mut big = b"GIF89a".to_vec();
        big.resize(Avatar::MAX_BYTES + 1, 0);
        assert_eq!(
            Avatar::parse(big).unwrap_err().reason,
            Reason::ImageTooLarge
        );
    }
}
