//! Any bytes as an image index or referrers list: `layout::Listing::parse` on
//! whatever JSON they are refuses or sets each entry either among the
//! descriptors or aside with a reason (never loses one), and the index it writes
//! back reads again as the same descriptors; serde into `layout::Index` never
//! panics and round-trips.
#![no_main]

use imprint_oci::layout::{Index, Listing};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(value) = serde_json::from_slice::<serde_json::Value>(data) else {
        return;
    };
    let entries = value
        .get("manifests")
        .and_then(|m| m.as_array())
        .map_or(0, Vec::len);
    if let Ok(listing) = Listing::parse(value) {
        assert_eq!(listing.manifests.len() + listing.rejected.len(), entries);
        assert!(listing.rejected.iter().all(|(text, _)| text.len() <= 200));
        let kept = listing.manifests.clone();
        let written = serde_json::to_value(listing.into_index()).expect("indexes serialize");
        let again = Listing::parse(written).expect("a written index parses");
        assert_eq!(again.manifests, kept);
        assert!(again.rejected.is_empty());
    }
    if let Ok(index) = serde_json::from_slice::<Index>(data) {
        let again = serde_json::to_vec(&index).expect("indexes serialize");
        let back: Index = serde_json::from_slice(&again).expect("a written index parses");
        assert_eq!(back, index);
    }
});
