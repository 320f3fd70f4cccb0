/* SPDX-License-Identifier: BSD-3-Clause */
#include <vhu/vhu.h>

const char *vhu_version(void)
{
	return VHU_VERSION_STRING;
}
