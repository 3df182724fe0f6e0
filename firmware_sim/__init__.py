"""Integer-only reference of what a microcontroller computes for an exported model.

Not implemented yet: the int8 / int32 simulator, its budget table and the C export are tracked
as their own piece of work (quantized multi-bit inference). Nothing here pretends otherwise.
"""
