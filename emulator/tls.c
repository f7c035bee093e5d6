/* placeholder: implementation in progress */
