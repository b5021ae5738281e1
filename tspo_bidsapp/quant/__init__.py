"""Quantification of TSPO PET: regional TACs, reference region (cerebellum or SVCA), regional
and voxel-wise kinetic fits, and lesion phenotypes. Plain numpy/scipy, no nipype."""
