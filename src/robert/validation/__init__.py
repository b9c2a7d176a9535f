"""Cross-checks against independent codes and data (optional extra ``validate``)."""
