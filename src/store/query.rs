//! Filters, sort orders and pages: what the dashboard and `cnnviz store list` ask for.

use super::pixels::Thumbnail;
use super::record::Summary;

/// Which predictions: all, saved only (not reported), reported, or reported as wrong.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum Kind {
    #[default]
    All,
    /// Saved and not reported.
    Saved,
    Reported,
    /// Reported with a true digit other than the predicted one.
    Wrong,
}

/// Narrows a [`Kind`] to one digit.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum DigitFilter {
    #[default]
    Any,
    /// The model predicted this class.
    Predicted(u16),
    /// A report says the drawing is this digit.
    True(u8),
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct Filter {
    pub kind: Kind,
    pub digit: DigitFilter,
}

impl Filter {
    pub const ALL: Filter = Filter {
        kind: Kind::All,
        digit: DigitFilter::Any,
    };

    /// Whether a prediction with this summary passes (what the index encodes; used by tests
    /// and `check`).
    pub fn matches(&self, s: &Summary) -> bool {
        let kind = match self.kind {
            Kind::All => true,
            Kind::Saved => s.true_digit.is_none(),
            Kind::Reported => s.true_digit.is_some(),
            Kind::Wrong => s.is_wrong(),
        };
        let digit = match self.digit {
            DigitFilter::Any => true,
            DigitFilter::Predicted(d) => s.predicted == d,
            DigitFilter::True(d) => s.true_digit == Some(d),
        };
        kind && digit
    }
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum Sort {
    #[default]
    Newest,
    Oldest,
    LeastConfident,
    MostConfident,
}

/// One gallery tile.
#[derive(Clone, Debug, PartialEq)]
pub struct GalleryItem {
    pub summary: Summary,
    pub thumbnail: Thumbnail,
}

/// One page of a filtered, sorted view.
#[derive(Clone, Debug, PartialEq)]
pub struct Page {
    /// How many predictions the filter matches in all.
    pub total: u64,
    /// Position of the first item in the view.
    pub offset: u64,
    pub items: Vec<GalleryItem>,
}
