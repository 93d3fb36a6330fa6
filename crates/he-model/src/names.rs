//! The one way explore gives a plain enum its names: [`named_enum!`] writes
//! the `ALL` list, `name`, `Display` and `FromStr` that specs, tables, the
//! command line and errors read, so a variant's name is written once.

/// Gives the fieldless enum `$ty` its names: `ALL` (every variant, in the
/// order listed), `name`, `Display` (the name) and `FromStr` (the variant
/// whose name is the text, else the error `$unknown` builds from the text,
/// which names the choices). Serde's names are the enum's own attributes
/// and must agree; each enum's tests parse its names back.
///
/// ```
/// #[derive(Debug, Clone, Copy, PartialEq)]
/// enum Side { Left, Right }
/// explore_he_model::named_enum!(Side: String, |s| format!("unknown side `{s}`: use left or right"), {
///     Left => "left",
///     Right => "right",
/// });
/// assert_eq!(Side::ALL, [Side::Left, Side::Right]);
/// assert_eq!("right".parse::<Side>(), Ok(Side::Right));
/// assert_eq!(Side::Left.to_string(), "left");
/// assert!("up".parse::<Side>().unwrap_err().contains("use left or right"));
/// ```
#[macro_export]
macro_rules! named_enum {
    ($ty:ident: $err:ty, |$text:ident| $unknown:expr, { $($variant:ident => $name:literal),+ $(,)? }) => {
        impl $ty {
            /// Every variant, in the order its names are listed.
            pub const ALL: [$ty; [$($name),+].len()] = [$($ty::$variant),+];

            /// The name specs, tables and the command line use.
            pub fn name(self) -> &'static str {
                match self {
                    $($ty::$variant => $name),+
                }
            }
        }

        impl ::std::fmt::Display for $ty {
            fn fmt(&self, f: &mut ::std::fmt::Formatter<'_>) -> ::std::fmt::Result {
                f.write_str(self.name())
            }
        }

        impl ::std::str::FromStr for $ty {
            type Err = $err;
            fn from_str($text: &str) -> ::std::result::Result<Self, Self::Err> {
                $ty::ALL
                    .into_iter()
                    .find(|v| v.name() == $text)
                    .ok_or_else(|| $unknown)
            }
        }
    };
}
