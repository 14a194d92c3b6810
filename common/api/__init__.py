"""The HTTP glue shared by the functions: serializers, filters, errors, authentication, URLs."""
