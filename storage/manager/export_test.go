package manager

// GCDriftMargin is gcDriftMargin, for the external tests.
const GCDriftMargin = gcDriftMargin
