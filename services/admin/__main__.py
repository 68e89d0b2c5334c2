from services.admin.cli import main

main()
