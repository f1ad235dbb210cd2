//! `daypass serve --dev`: filled in below.
