"""Kinetic models for reference-tissue TSPO PET. Times are in minutes throughout."""
