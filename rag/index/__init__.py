"""The searchable index: the embedders that turn text into vectors, and the corpus index that
holds each version's chunks, vectors and lexical indexes."""
