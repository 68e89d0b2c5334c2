from services.status.app import main

main()
