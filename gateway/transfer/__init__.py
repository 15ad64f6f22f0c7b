"""Design transfer (G11): what a bundle file is, whether a mesh is sound, and what the CAD companions say."""
