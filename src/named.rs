//! String enums declared once: [`named_enum!`] takes each variant with its
//! stable name (what the wire, the database or the logs carry) and yields
//! `as_str`, `from_name` and `ALL`, so a name is written in one place and
//! the three can never disagree.

/// Declares a fieldless enum whose variants each have one stable name.
///
/// ```text
/// named_enum! {
///     /// Docs and derives as for any enum.
///     #[derive(Debug, Clone, Copy, PartialEq, Eq)]
///     pub enum Colour {
///         /// Variant docs too.
///         Red => "red",
///         Green => "green",
///     }
/// }
/// ```
///
/// `Colour::ALL` lists the variants in declaration order, `as_str` gives a
/// variant's name and `from_name` the variant of an exact name. Parsing
/// with the enum's own error (a `FromStr`, a `parse`) builds on `from_name`.
macro_rules! named_enum {
    (
        $(#[$meta:meta])*
        $vis:vis enum $name:ident {
            $( $(#[$vmeta:meta])* $variant:ident => $text:literal, )+
        }
    ) => {
        $(#[$meta])*
        $vis enum $name {
            $( $(#[$vmeta])* $variant, )+
        }

        impl $name {
            /// Every variant, in declaration order.
            pub const ALL: &'static [$name] = &[$($name::$variant,)+];

            /// The stable name.
            pub fn as_str(self) -> &'static str {
                match self {
                    $($name::$variant => $text,)+
                }
            }

            /// The variant of a stable name, if any.
            pub fn from_name(name: &str) -> Option<Self> {
                match name {
                    $($text => Some($name::$variant),)+
                    _ => None,
                }
            }
        }
    };
}

pub(crate) use named_enum;
