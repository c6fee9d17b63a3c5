"""Model selection: tau side by side with the transferability estimators practitioners use. The family's slice."""
